"""``/api/v1/campaigns`` and the public tracking endpoints: the open pixel
``GET /t/o/<token>.gif``, the click redirect ``GET /t/c/<token>?u=`` and the unsubscribe page
``/t/u/<token>``."""

from __future__ import annotations

import base64
import html
import uuid

import sqlalchemy as sa

from flask import Blueprint as FlaskBlueprint
from flask import current_app, jsonify, redirect, request
from flask.views import MethodView
from flask_smorest import Blueprint

from clientela.core import customers, tenancy
from clientela.core.api import error_body
from clientela.core.api.auth import current_principal
from clientela.core.db import db
from clientela.core.models import Tenant
from clientela.plugins.operational import campaign_schemas as schemas
from clientela.plugins.operational import campaigns as service
from clientela.plugins.operational.campaign_models import Campaign

blp = Blueprint("campaigns", __name__, url_prefix="/campaigns",
                description="Campaigns: target lists or segments, sending, responses, results")


def _base() -> str | None:
    """Where tracking links point when ``OPERATIONAL_TRACKING_BASE_URL`` is not set: the
    address this request came to (the send job has no request of its own)."""
    return None if current_app.config.get("OPERATIONAL_TRACKING_BASE_URL") else request.host_url


@blp.route("")
class Campaigns(MethodView):
    @blp.arguments(schemas.CampaignQuery, location="query")
    @blp.response(200, schemas.Campaign(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List the campaigns you may see (default: newest first)."""
        sort = args.pop("sort", None)
        stmt = service.campaigns_query(current_principal(), **args)
        stmt = customers.order_by(stmt, Campaign, sort, service.CAMPAIGN_SORT, "-created_at")
        return customers.paginated(stmt, pagination_parameters)

    @blp.arguments(schemas.CampaignInput)
    @blp.response(201, schemas.Campaign)
    def post(self, data):
        """Create a draft campaign (e-mail, marketing, the default currency unless told)."""
        campaign = service.create_campaign(data, current_principal())
        db.session.commit()
        return campaign


@blp.route("/segments")
class Segments(MethodView):
    @blp.response(200, schemas.Segment(many=True))
    def get(self):
        """The segments other plugins offer as audiences (``clientela_segments``)."""
        from clientela.core import access

        access.require(current_principal(), "campaigns:read")
        return service.segments()


@blp.route("/<uuid:campaign_id>")
class CampaignById(MethodView):
    @blp.response(200, schemas.Campaign)
    def get(self, campaign_id: uuid.UUID):
        """One campaign."""
        return service.get_campaign(campaign_id, current_principal())

    @blp.arguments(schemas.CampaignUpdate(partial=True))
    @blp.response(200, schemas.Campaign)
    def patch(self, data, campaign_id: uuid.UUID):
        """Change a draft or scheduled campaign; once sending, only its name, description,
        budget and cost."""
        campaign = service.update_campaign(campaign_id, data, current_principal())
        db.session.commit()
        return campaign

    @blp.response(204)
    def delete(self, campaign_id: uuid.UUID):
        """Delete a campaign that was never sent."""
        service.delete_campaign(campaign_id, current_principal())
        db.session.commit()


@blp.route("/<uuid:campaign_id>/members")
class Members(MethodView):
    @blp.response(200, schemas.CampaignMember(many=True))
    @blp.paginate()
    def get(self, campaign_id: uuid.UUID, pagination_parameters):
        """The customers on the campaign's static list."""
        return customers.paginated(service.members_query(campaign_id, current_principal()),
                                   pagination_parameters)

    @blp.arguments(schemas.MembersInput)
    @blp.response(200, schemas.MembersAdded)
    def post(self, data, campaign_id: uuid.UUID):
        """Add customers to the list (those already on it are left as they are)."""
        result = service.add_members(campaign_id, data["customer_ids"], current_principal())
        db.session.commit()
        return result


@blp.route("/<uuid:campaign_id>/members/<uuid:customer_id>")
class MemberById(MethodView):
    @blp.response(204)
    def delete(self, campaign_id: uuid.UUID, customer_id: uuid.UUID):
        """Take a customer off the list."""
        service.remove_member(campaign_id, customer_id, current_principal())
        db.session.commit()


@blp.route("/<uuid:campaign_id>/preview")
class PreviewView(MethodView):
    @blp.arguments(schemas.PreviewInput)
    @blp.response(200, schemas.Preview)
    def post(self, data, campaign_id: uuid.UUID):
        """The message as one customer would read it, merge fields filled in."""
        return service.preview(campaign_id, data["customer_id"], current_principal())


@blp.route("/<uuid:campaign_id>/schedule")
class ScheduleView(MethodView):
    @blp.arguments(schemas.ScheduleInput)
    @blp.response(200, schemas.Campaign)
    def post(self, data, campaign_id: uuid.UUID):
        """Send the campaign at ``send_at`` (a periodic job starts it once that is past)."""
        campaign = service.schedule(campaign_id, data["send_at"], current_principal(), _base())
        db.session.commit()
        return campaign


@blp.route("/<uuid:campaign_id>/send")
class SendView(MethodView):
    @blp.response(202, schemas.SendStarted)
    def post(self, campaign_id: uuid.UUID):
        """Send now as a background job, or resume a send that stopped; nobody already
        sent to gets the message twice."""
        campaign, job_id = service.send_now(campaign_id, current_principal(), _base())
        db.session.commit()
        return {"campaign": campaign, "job_id": job_id}


@blp.route("/<uuid:campaign_id>/cancel")
class CancelView(MethodView):
    @blp.response(200, schemas.Campaign)
    def post(self, campaign_id: uuid.UUID):
        """Cancel a draft, scheduled or sending campaign."""
        campaign = service.cancel(campaign_id, current_principal())
        db.session.commit()
        return campaign


@blp.route("/<uuid:campaign_id>/recipients")
class Recipients(MethodView):
    @blp.arguments(schemas.RecipientQuery, location="query")
    @blp.response(200, schemas.Recipient(many=True))
    @blp.paginate()
    def get(self, args, campaign_id: uuid.UUID, pagination_parameters):
        """Who the campaign went to: sent, blocked (with the reason), failed (with the error)
        and their responses."""
        stmt = service.recipients_query(campaign_id, current_principal(), **args)
        return customers.paginated(stmt, pagination_parameters)


@blp.route("/<uuid:campaign_id>/responses")
class Responses(MethodView):
    @blp.arguments(schemas.ResponseInput)
    @blp.response(200, schemas.Recipient)
    def post(self, data, campaign_id: uuid.UUID):
        """Record a response learnt elsewhere (delivered, opened, clicked, replied,
        unsubscribed) for a customer the campaign was sent to."""
        recipient = service.record_response_for(campaign_id, data, current_principal())
        db.session.commit()
        return recipient


@blp.route("/<uuid:campaign_id>/deals")
class Deals(MethodView):
    @blp.response(200, schemas.LinkedDeal(many=True))
    def get(self, campaign_id: uuid.UUID):
        """The deals attributed to the campaign."""
        return service.campaign_deals(campaign_id, current_principal())

    @blp.arguments(schemas.DealLinkInput)
    @blp.response(201, schemas.LinkedDeal)
    def post(self, data, campaign_id: uuid.UUID):
        """Attribute a deal to the campaign (a conversion when its customer got it)."""
        from clientela.plugins.operational.models import Deal

        link = service.link_deal(campaign_id, data["deal_id"], current_principal())
        db.session.commit()
        return db.session.execute(db.select(Deal).where(Deal.id == link.deal_id)).scalar_one()


@blp.route("/<uuid:campaign_id>/deals/<uuid:deal_id>")
class DealLink(MethodView):
    @blp.response(204)
    def delete(self, campaign_id: uuid.UUID, deal_id: uuid.UUID):
        """Stop attributing a deal to the campaign."""
        service.unlink_deal(campaign_id, deal_id, current_principal())
        db.session.commit()


@blp.route("/<uuid:campaign_id>/results")
class ResultsView(MethodView):
    @blp.response(200, schemas.Results)
    def get(self, campaign_id: uuid.UUID):
        """Reach, response rates, deals, revenue, cost and ROI."""
        return service.results(campaign_id, current_principal())


BLUEPRINTS = [blp]


# --- public tracking endpoints ------------------------------------------------------------

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {"Cache-Control": "no-store, no-cache, must-revalidate, max-age=0",
            "Pragma": "no-cache"}


def _not_found():
    return jsonify(error_body(404, "no such link")), 404


def _in_tenant(found, action):
    """Run ``action(recipient)`` in the tenant the token names; 404 for anything unknown."""
    if found is None:
        return _not_found()
    tenant_id, recipient_id = found
    tenant = db.session.get(Tenant, tenant_id)
    if tenant is None or tenant.status != "active":
        db.session.rollback()
        return _not_found()
    with tenancy.tenant_context(tenant_id, origin="web"):
        for attempt in (1, 2):
            recipient = service.find_recipient(recipient_id)
            if recipient is None:
                db.session.rollback()
                return _not_found()
            try:
                answer = action(recipient)
                db.session.commit()
                return answer
            except sa.exc.IntegrityError:
                # the same response recorded at the same moment by a second request (mail
                # clients fetch twice): the other one won; record this one on top of it
                db.session.rollback()
                if attempt == 2:
                    raise
    return _not_found()


def track_open(token: str):
    """The open pixel: a 1×1 GIF, recording the open."""
    def opened(recipient):
        service.record_response(recipient, "opened")
        return current_app.response_class(PIXEL, mimetype="image/gif", headers=NO_STORE)

    return _in_tenant(service.read_token(token), opened)


def track_click(token: str):
    """A tracked link: records the click and redirects to the link the message carried."""
    url = request.args.get("u", "")
    if not url.startswith(("http://", "https://")):
        return _not_found()

    def clicked(recipient):
        service.record_response(recipient, "clicked", detail=url,
                                key=service._digest(url)[:16])
        return redirect(url, code=302)

    return _in_tenant(service.read_token(token, url), clicked)


def _page(title: str, text: str, form: bool = False):
    button = ('<form method="post"><button type="submit">Unsubscribe</button></form>'
              if form else "")
    return current_app.response_class(
        f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
        f"</title></head><body><p>{html.escape(text)}</p>{button}</body></html>",
        status=200, mimetype="text/html", headers=NO_STORE)


def unsubscribe(token: str):
    """GET shows a page with one button (link scanners follow GETs); POST — the button,
    or a mail client's one-click ``List-Unsubscribe-Post`` (RFC 8058) — unsubscribes."""
    found = service.read_token(token)
    if request.method == "GET":
        if found is None:
            return _not_found()
        return _page("Unsubscribe", "Do you want to stop receiving these messages?", True)

    def unsubscribed(recipient):
        service.record_response(recipient, "unsubscribed")
        return _page("Unsubscribed", "You are unsubscribed: you will receive no more of "
                                     "these messages.")

    return _in_tenant(found, unsubscribed)


public = FlaskBlueprint("campaigns_public", __name__)
public.add_url_rule("/t/o/<token>.gif", endpoint="open", view_func=track_open,
                    methods=["GET"])
public.add_url_rule("/t/c/<token>", endpoint="click", view_func=track_click, methods=["GET"])
public.add_url_rule("/t/u/<token>", endpoint="unsubscribe", view_func=unsubscribe,
                    methods=["GET", "POST"])

__all__ = ["BLUEPRINTS", "public"]
