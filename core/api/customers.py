"""``/api/v1/customers`` and ``/api/v1/interactions``."""

from __future__ import annotations

import uuid

from flask import Response, current_app, request, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint

from clientela.core import access, customers, transfer
from clientela.core.api import schemas
from clientela.core.api.auth import current_principal
from clientela.core.db import db, utcnow
from clientela.core.errors import Forbidden, ValidationError
from clientela.core.events import call_each
from clientela.core.models import Interaction

blp = Blueprint("customers", __name__, url_prefix="/customers",
                description="Customers (persons and organisations) and their 360° view")
search_blp = Blueprint("search", __name__, url_prefix="/search",
                       description="One search over customers and every plugin's records")
interactions_blp = Blueprint("interactions", __name__, url_prefix="/interactions",
                             description="Every touchpoint with a customer")

INTERACTION_SORT = {"occurred_at", "created_at", "channel"}


@blp.route("")
class Customers(MethodView):
    @blp.arguments(schemas.CustomerQuery, location="query")
    @blp.response(200, schemas.Customer(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List customers, filtered, sorted and paginated (``page``, ``page_size``).

        Custom attributes filter as ``attr.<key>=value`` or ``attr.<key>.<op>=value``
        (``op``: ``eq``, ``gt``, ``gte``, ``lt``, ``lte``) and sort as ``sort=attr.<key>``.
        """
        sort = args.pop("sort", None)
        attributes = customers.attribute_filters(request.args)
        stmt = customers.customers_query(current_principal(), attributes=attributes, **args)
        stmt = customers.order_by(stmt, customers.Customer, sort, customers.SORTABLE,
                                  "display_name")
        return customers.paginated(stmt, pagination_parameters)

    @blp.arguments(schemas.CustomerInput)
    @blp.response(201, schemas.Customer)
    def post(self, data):
        """Create a customer (you are its owner unless ``owner_id`` says otherwise)."""
        customer = customers.create(data, current_principal())
        db.session.commit()
        return customer


@blp.route("/import")
class CustomersImport(MethodView):
    @blp.arguments(schemas.ImportQuery, location="query")
    @blp.doc(requestBody={
        "required": True,
        "description": "The file itself, streamed: CSV (with a header row) or vCard 3/4.",
        "content": {"text/csv": {"schema": {"type": "string"}},
                    "text/vcard": {"schema": {"type": "string"}},
                    "application/octet-stream": {"schema": {"type": "string",
                                                            "format": "binary"}}},
    })
    @blp.response(200, schemas.ImportResult)
    def post(self, args):
        """Import customers from the request body, streamed; answers with the per-row report.

        With ``all_or_nothing`` a single bad row refuses the file (422, nothing written);
        otherwise good rows are kept and bad ones reported. ``dry_run`` writes nothing.
        """
        principal = current_principal()
        access.require(principal, "customers:write")
        if principal.scope("customers:write") != "all":
            raise Forbidden("importing needs 'customers:write' on all records")
        mapping = transforms = None
        if args.get("mapping"):
            mapping, transforms = transfer.saved_mapping(args["mapping"], "customers")
        content_type = (request.mimetype or "").lower()
        fmt = args.get("format") or ("vcard" if "vcard" in content_type else None)
        report = transfer.import_customers(
            request.stream, filename=args.get("filename"), format=fmt, mapping=mapping,
            transforms=transforms,
            match=args["match"], all_or_nothing=args["all_or_nothing"],
            dry_run=args["dry_run"], phone_region=current_app.config.get("PHONE_DEFAULT_REGION"),
        )
        result = report.as_dict()
        if report.refused:
            raise ValidationError({"rows": [str(e) for e in report.errors]},
                                  message=f"{report.failed} bad row(s): the file was refused "
                                          "and nothing was written")
        return result


@blp.route("/export.csv")
class CustomersExport(MethodView):
    @blp.doc(responses={"200": {"description": "Every customer of the tenant, as CSV "
                                               "(the columns the import reads).",
                                "content": {"text/csv": {"schema": {"type": "string"}}}}})
    def get(self):
        """Export every customer as CSV, streamed."""
        principal = current_principal()
        if principal.scope("customers:read") != "all":
            raise Forbidden("exporting needs 'customers:read' on all records")
        stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
        return Response(stream_with_context(transfer.iter_customers_csv()), mimetype="text/csv",
                        headers={"Content-Disposition":
                                 f'attachment; filename="customers-{stamp}.csv"'})


@blp.route("/duplicates")
class Duplicates(MethodView):
    @blp.response(200, schemas.DuplicateGroup(many=True))
    def get(self):
        """Likely duplicates: the same e-mail, the same phone, or the same name."""
        return customers.duplicates(current_principal())


@blp.route("/<uuid:customer_id>")
class CustomerById(MethodView):
    @blp.response(200, schemas.Customer)
    def get(self, customer_id: uuid.UUID):
        """One customer."""
        return customers.get_customer(customer_id, current_principal())

    @blp.arguments(schemas.CustomerUpdate(partial=True))
    @blp.response(200, schemas.Customer)
    def patch(self, data, customer_id: uuid.UUID):
        """Change some fields of a customer."""
        customer = customers.update(customer_id, data, current_principal())
        db.session.commit()
        return customer

    @blp.response(204)
    def delete(self, customer_id: uuid.UUID):
        """Delete a customer and its interactions."""
        customers.delete(customer_id, current_principal())
        db.session.commit()


@blp.route("/<uuid:customer_id>/profile")
class CustomerProfile(MethodView):
    @blp.response(200, schemas.Profile)
    def get(self, customer_id: uuid.UUID):
        """The 360° view: core data, organisation, contacts, interactions, plugins' sections."""
        return customers.profile(customer_id, current_principal())


@blp.route("/<uuid:customer_id>/interactions")
class CustomerInteractions(MethodView):
    @blp.response(200, schemas.Interaction(many=True))
    @blp.paginate()
    def get(self, pagination_parameters, customer_id: uuid.UUID):
        """The customer's timeline, newest first."""
        principal = current_principal()
        customers.get_customer(customer_id, principal)
        stmt = customers.interactions_query(principal, customer_id=customer_id)
        stmt = stmt.order_by(Interaction.occurred_at.desc(), Interaction.id)
        return customers.paginated(stmt, pagination_parameters)

    @blp.arguments(schemas.InteractionInput)
    @blp.response(201, schemas.Interaction)
    def post(self, data, customer_id: uuid.UUID):
        """Record an interaction on the customer's timeline."""
        interaction = customers.record_interaction(customer_id, data, current_principal())
        db.session.commit()
        return interaction


@blp.route("/<uuid:customer_id>/merge")
class CustomerMerge(MethodView):
    @blp.arguments(schemas.MergeInput)
    @blp.response(200, schemas.MergeResult)
    def post(self, data, customer_id: uuid.UUID):
        """Merge another customer into this one (``dry_run`` shows the result first)."""
        result = customers.merge(customer_id, data["other_id"], current_principal(),
                                 prefer=data["prefer"], dry_run=data["dry_run"])
        if not data["dry_run"]:
            db.session.commit()
            call_each(customers._hook().clientela_customer_merged_postcommit,
                      survivor_id=customer_id, merged_id=data["other_id"])
        return result


@blp.route("/<uuid:customer_id>/export")
class CustomerExport(MethodView):
    @blp.response(200, schemas.ExportDocument)
    def get(self, customer_id: uuid.UUID):
        """Everything held about the customer, core and plugins (data-subject access)."""
        document = customers.export(customer_id, current_principal())
        db.session.commit()
        return document


@blp.route("/<uuid:customer_id>/erase")
class CustomerErase(MethodView):
    @blp.response(200, schemas.EraseResult)
    def post(self, customer_id: uuid.UUID):
        """Anonymise the customer's personal data everywhere (right to erasure)."""
        summary = customers.erase(customer_id, current_principal())
        db.session.commit()
        call_each(customers._hook().clientela_customer_erased_postcommit, customer_id=customer_id)
        return summary


@interactions_blp.route("")
class Interactions(MethodView):
    @interactions_blp.arguments(schemas.InteractionQuery, location="query")
    @interactions_blp.response(200, schemas.Interaction(many=True))
    @interactions_blp.paginate()
    def get(self, args, pagination_parameters):
        """Interactions of the customers you may see, newest first by default."""
        sort = args.pop("sort", None)
        stmt = customers.interactions_query(current_principal(), **args)
        stmt = customers.order_by(stmt, Interaction, sort, INTERACTION_SORT, "-occurred_at")
        return customers.paginated(stmt, pagination_parameters)

    @interactions_blp.arguments(schemas.InteractionCreate)
    @interactions_blp.response(201, schemas.Interaction)
    def post(self, data):
        """Record an interaction."""
        customer_id = data.pop("customer_id")
        interaction = customers.record_interaction(customer_id, data, current_principal())
        db.session.commit()
        return interaction


@interactions_blp.route("/<uuid:interaction_id>")
class InteractionById(MethodView):
    @interactions_blp.response(200, schemas.Interaction)
    def get(self, interaction_id: uuid.UUID):
        """One interaction."""
        return customers.get_interaction(interaction_id, current_principal())


@search_blp.route("")
class GlobalSearch(MethodView):
    @search_blp.arguments(schemas.SearchQuery, location="query")
    @search_blp.response(200, schemas.SearchResult(many=True))
    def get(self, args):
        """Customers and the records of every plugin (leads, deals, cases, ...) that match
        ``q``, limited to what the caller may read, best matches first."""
        from clientela.core import search

        return search.search_everything(args["q"], current_principal(), args["limit"])
