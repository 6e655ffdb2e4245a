"""``/api/v1/teams``, ``/api/v1/inbox``, ``/api/v1/consents`` (and a customer's consents) and
``/api/v1/portal-accounts``: the staff side of teams, the communication centre, consent and
the customer portal."""

from __future__ import annotations

import uuid

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from clientela.core import access, customers
from clientela.core.api.auth import current_principal
from clientela.core.db import db
from clientela.plugins.collaborative import consent, inbox, portal, teams
from clientela.plugins.collaborative.collab_models import (
    CONSENT_PURPOSES,
    INBOX_STATUSES,
    PORTAL_STATUSES,
)

teams_blp = Blueprint("teams", __name__, url_prefix="/teams",
                      description="Teams, their members and leads; the team record scope")
inbox_blp = Blueprint("inbox", __name__, url_prefix="/inbox",
                      description="The communication centre: inbound messages to answer")
consents_blp = Blueprint("consents", __name__, url_prefix="/consents",
                         description="Consent records (append-only proof)")
customer_consents_blp = Blueprint("customer_consents", __name__, url_prefix="/customers",
                                  description="A customer's consent and preferences")
portal_accounts_blp = Blueprint("portal_accounts", __name__, url_prefix="/portal-accounts",
                                description="Customer self-service portal accounts")


# --- schemas ------------------------------------------------------------------------------------


class Stamped(Schema):
    id = fields.UUID(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class MemberInput(Schema):
    user_id = fields.UUID(required=True)
    is_lead = fields.Boolean(load_default=False)


class MemberUpdate(Schema):
    is_lead = fields.Boolean(required=True)


class TeamMember(Schema):
    user_id = fields.UUID()
    email = fields.String()
    name = fields.String()
    is_lead = fields.Boolean()
    added_at = fields.DateTime()


class TeamInput(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    description = fields.String(validate=validate.Length(max=500))
    members = fields.List(fields.Nested(MemberInput), load_only=True)


class TeamUpdate(Schema):
    name = fields.String(validate=validate.Length(min=1, max=100))
    description = fields.String(validate=validate.Length(max=500))


class Team(Stamped):
    name = fields.String()
    description = fields.String()


class InboxQuery(Schema):
    status = fields.String(metadata={"description": "open, pending, done (comma-separated)"})
    team = fields.UUID(metadata={"description": "one team's queue"})
    assignee = fields.String(metadata={"description": "a user id, 'me' or 'none'"})
    channel = fields.String()
    customer_id = fields.UUID()
    mentioned = fields.Boolean(metadata={"description": "only items mentioning me"})


class InboxItem(Stamped):
    interaction_id = fields.UUID()
    customer_id = fields.UUID()
    customer_name = fields.String(allow_none=True)
    channel = fields.String()
    subject = fields.String()
    body = fields.String()
    status = fields.String()
    assignee_id = fields.UUID(allow_none=True)
    team_id = fields.UUID(allow_none=True)
    received_at = fields.DateTime()
    done_at = fields.DateTime(allow_none=True)


class InboxUpdate(Schema):
    status = fields.String(validate=validate.OneOf(INBOX_STATUSES))
    assignee_id = fields.UUID(allow_none=True)
    team_id = fields.UUID(allow_none=True)


class NoteInput(Schema):
    body = fields.String(required=True, validate=validate.Length(min=1, max=20000))


class Note(Stamped):
    item_id = fields.UUID()
    author_id = fields.UUID(allow_none=True)
    body = fields.String()
    mentions = fields.List(fields.UUID(), metadata={"description": "users @mentioned"})
    unresolved_mentions = fields.List(fields.String(),
                                      metadata={"description": "@names matching no user"})


class ReplyInput(Schema):
    body = fields.String(required=True, validate=validate.Length(min=1, max=100000))
    subject = fields.String(validate=validate.Length(max=500))
    status = fields.String(validate=validate.OneOf(INBOX_STATUSES),
                           metadata={"description": "the item's status after a sent reply "
                                                    "(default pending)"})


class ReplyResult(Schema):
    status = fields.String(metadata={"description": "sent, queued, failed or blocked"})
    reason = fields.String()
    error = fields.String()
    interaction_id = fields.UUID(allow_none=True)
    message_id = fields.String(allow_none=True)
    item = fields.Nested(InboxItem)


class ConsentInput(Schema):
    channel = fields.String(required=True, validate=validate.Length(min=1, max=40))
    purpose = fields.String(required=True, validate=validate.OneOf(CONSENT_PURPOSES))
    granted = fields.Boolean(required=True)
    source = fields.String(validate=validate.Length(min=1, max=100), metadata={
        "description": "where the decision came from (default: staff:<your e-mail>)"})
    note = fields.String(validate=validate.Length(max=500))
    recorded_at = fields.AwareDateTime(metadata={"description": "when it was given (default "
                                                                "now)"})


class Consent(Stamped):
    customer_id = fields.UUID()
    channel = fields.String()
    purpose = fields.String()
    granted = fields.Boolean()
    source = fields.String()
    note = fields.String()
    recorded_at = fields.DateTime()
    created_by = fields.UUID(allow_none=True)


class CustomerConsents(Schema):
    customer_id = fields.UUID()
    current = fields.List(fields.Nested(Consent))
    history = fields.List(fields.Nested(Consent))


class ConsentQuery(Schema):
    customer_id = fields.UUID()
    channel = fields.String()
    purpose = fields.String(validate=validate.OneOf(CONSENT_PURPOSES))
    granted = fields.Boolean()


class UnsubscribeLinkQuery(Schema):
    channel = fields.String(load_default="email", validate=validate.Length(min=1, max=40))


class UnsubscribeLink(Schema):
    url = fields.String()
    token = fields.String()


class PortalAccountInput(Schema):
    customer_id = fields.UUID(required=True)
    email = fields.String(validate=validate.Length(max=320),
                          metadata={"description": "default: the customer's e-mail"})
    is_admin = fields.Boolean(load_default=False, metadata={
        "description": "may see the people of the customer's organisation"})


class PortalAccountUpdate(Schema):
    is_admin = fields.Boolean()
    status = fields.String(validate=validate.OneOf(("active", "disabled")))


class PortalAccount(Stamped):
    customer_id = fields.UUID()
    email = fields.String()
    status = fields.String(metadata={"description": ", ".join(PORTAL_STATUSES)})
    is_admin = fields.Boolean()
    last_login_at = fields.DateTime(allow_none=True)
    invitation = fields.Dict(dump_only=True, metadata={
        "description": "the result of sending the invitation (status, interaction_id)"})


class PortalAccountQuery(Schema):
    customer_id = fields.UUID()


class SendResult(Schema):
    status = fields.String()
    reason = fields.String()
    error = fields.String()
    interaction_id = fields.UUID(allow_none=True)
    message_id = fields.String(allow_none=True)


# --- teams --------------------------------------------------------------------------------------


@teams_blp.route("")
class Teams(MethodView):
    @teams_blp.response(200, Team(many=True))
    @teams_blp.paginate()
    def get(self, pagination_parameters):
        """The tenant's teams."""
        return customers.paginated(teams.teams_query(current_principal()), pagination_parameters)

    @teams_blp.arguments(TeamInput)
    @teams_blp.response(201, Team)
    def post(self, data):
        """Create a team (optionally with its first members)."""
        team = teams.create_team(data, current_principal())
        db.session.commit()
        return team


@teams_blp.route("/<uuid:team_id>")
class TeamById(MethodView):
    @teams_blp.response(200, Team)
    def get(self, team_id: uuid.UUID):
        """One team."""
        return teams.get_team(team_id, current_principal())

    @teams_blp.arguments(TeamUpdate)
    @teams_blp.response(200, Team)
    def patch(self, data, team_id: uuid.UUID):
        """Rename or describe a team."""
        team = teams.update_team(team_id, data, current_principal())
        db.session.commit()
        return team

    @teams_blp.response(204)
    def delete(self, team_id: uuid.UUID):
        """Delete a team; the items of its queue stay, without a team."""
        teams.delete_team(team_id, current_principal())
        db.session.commit()


@teams_blp.route("/<uuid:team_id>/members")
class TeamMembers(MethodView):
    @teams_blp.response(200, TeamMember(many=True))
    def get(self, team_id: uuid.UUID):
        """The team's members and leads."""
        return teams.members(team_id, current_principal())

    @teams_blp.arguments(MemberInput)
    @teams_blp.response(201, TeamMember)
    def post(self, data, team_id: uuid.UUID):
        """Add a member (``teams:write``, or a lead of the team)."""
        member = teams.add_member(team_id, data["user_id"], current_principal(),
                                  is_lead=data["is_lead"])
        db.session.commit()
        return member


@teams_blp.route("/<uuid:team_id>/members/<uuid:user_id>")
class TeamMemberById(MethodView):
    @teams_blp.arguments(MemberUpdate)
    @teams_blp.response(200, TeamMember)
    def patch(self, data, team_id: uuid.UUID, user_id: uuid.UUID):
        """Make a member a lead, or not."""
        member = teams.update_member(team_id, user_id, data, current_principal())
        db.session.commit()
        return member

    @teams_blp.response(204)
    def delete(self, team_id: uuid.UUID, user_id: uuid.UUID):
        """Remove a member from the team."""
        teams.remove_member(team_id, user_id, current_principal())
        db.session.commit()


# --- the communication centre ---------------------------------------------------------------------


@inbox_blp.route("")
class Inbox(MethodView):
    @inbox_blp.arguments(InboxQuery, location="query")
    @inbox_blp.response(200, InboxItem(many=True))
    @inbox_blp.paginate()
    def get(self, args, pagination_parameters):
        """The items you may see (by your ``inbox:read`` scope), oldest open first;
        ``?team=`` is one team's queue, ``?assignee=me`` your own, ``?mentioned=true`` the
        items where you were @mentioned."""
        stmt = inbox.items_query(current_principal(), **args)
        stmt = stmt.order_by(None).order_by(inbox.InboxItem.received_at, inbox.InboxItem.id)
        return inbox.decorate(customers.paginated(stmt, pagination_parameters))


@inbox_blp.route("/<uuid:item_id>")
class InboxItemById(MethodView):
    @inbox_blp.response(200, InboxItem)
    def get(self, item_id: uuid.UUID):
        """One item, with the message."""
        return inbox.decorate([inbox.get_item(item_id, current_principal())])[0]

    @inbox_blp.arguments(InboxUpdate)
    @inbox_blp.response(200, InboxItem)
    def patch(self, data, item_id: uuid.UUID):
        """Assign to a user and/or a team, or change the status."""
        item = inbox.update_item(item_id, data, current_principal())
        db.session.commit()
        return inbox.decorate([item])[0]


@inbox_blp.route("/<uuid:item_id>/notes")
class InboxNotes(MethodView):
    @inbox_blp.response(200, Note(many=True))
    def get(self, item_id: uuid.UUID):
        """The item's internal notes, oldest first."""
        return inbox.notes(item_id, current_principal())

    @inbox_blp.arguments(NoteInput)
    @inbox_blp.response(201, Note)
    def post(self, data, item_id: uuid.UUID):
        """Add an internal note; ``@user@example.com`` (or ``@user`` when unique) mentions a
        user, who then sees the item in their list."""
        note = inbox.add_note(item_id, data["body"], current_principal())
        db.session.commit()
        return note


@inbox_blp.route("/<uuid:item_id>/reply")
class InboxReply(MethodView):
    @inbox_blp.arguments(ReplyInput)
    @inbox_blp.response(200, ReplyResult)
    def post(self, data, item_id: uuid.UUID):
        """Answer on the item's own channel (purpose ``service``); a sent reply makes the item
        ``pending``. ``status`` says ``blocked`` or ``failed`` when nothing went out."""
        result = inbox.reply(item_id, data, current_principal())
        db.session.commit()
        inbox.decorate([result["item"]])
        return result


# --- consent --------------------------------------------------------------------------------------


@consents_blp.route("")
class Consents(MethodView):
    @consents_blp.arguments(ConsentQuery, location="query")
    @consents_blp.response(200, Consent(many=True))
    @consents_blp.paginate()
    def get(self, args, pagination_parameters):
        """Every consent record of the customers you may see, newest first."""
        return customers.paginated(consent.consents_query(current_principal(), **args),
                                   pagination_parameters)


@customer_consents_blp.route("/<uuid:customer_id>/consents")
class CustomerConsentList(MethodView):
    @customer_consents_blp.response(200, CustomerConsents)
    def get(self, customer_id: uuid.UUID):
        """The customer's current consent per channel and purpose, and the whole history."""
        return consent.for_customer(customer_id, current_principal())

    @customer_consents_blp.arguments(ConsentInput)
    @customer_consents_blp.response(201, Consent)
    def post(self, data, customer_id: uuid.UUID):
        """Record a decision (granted or withdrawn); records are never changed or deleted."""
        record = consent.record_for_customer(customer_id, data, current_principal())
        db.session.commit()
        return record


@customer_consents_blp.route("/<uuid:customer_id>/unsubscribe-link")
class CustomerUnsubscribeLink(MethodView):
    @customer_consents_blp.arguments(UnsubscribeLinkQuery, location="query")
    @customer_consents_blp.response(200, UnsubscribeLink)
    def get(self, args, customer_id: uuid.UUID):
        """The customer's public unsubscribe link for a channel (for e-mail footers)."""
        principal = current_principal()
        access.require(principal, "consents:read")
        customer = customers.get_customer(customer_id, principal)
        token = consent.unsubscribe_token(customer.tenant_id, customer.id, args["channel"])
        base = current_app.config.get("COLLABORATIVE_PUBLIC_BASE_URL") or request.host_url
        return {"token": token, "url": f"{base.rstrip('/')}/u/{token}"}


# --- portal accounts ------------------------------------------------------------------------------


@portal_accounts_blp.route("")
class PortalAccounts(MethodView):
    @portal_accounts_blp.arguments(PortalAccountQuery, location="query")
    @portal_accounts_blp.response(200, PortalAccount(many=True))
    @portal_accounts_blp.paginate()
    def get(self, args, pagination_parameters):
        """The portal accounts of the customers you may see."""
        return customers.paginated(portal.accounts_query(current_principal(), **args),
                                   pagination_parameters)

    @portal_accounts_blp.arguments(PortalAccountInput)
    @portal_accounts_blp.response(201, PortalAccount)
    def post(self, data):
        """Open a portal account for a customer contact and e-mail the invitation."""
        account, sent = portal.create_account(data, current_principal())
        db.session.commit()
        account.invitation = sent
        return account


@portal_accounts_blp.route("/<uuid:account_id>")
class PortalAccountById(MethodView):
    @portal_accounts_blp.response(200, PortalAccount)
    def get(self, account_id: uuid.UUID):
        """One portal account."""
        return portal.get_account(account_id, current_principal())

    @portal_accounts_blp.arguments(PortalAccountUpdate)
    @portal_accounts_blp.response(200, PortalAccount)
    def patch(self, data, account_id: uuid.UUID):
        """Make the account an organisation admin, or disable it (its sessions end)."""
        account = portal.update_account(account_id, data, current_principal())
        db.session.commit()
        return account

    @portal_accounts_blp.response(204)
    def delete(self, account_id: uuid.UUID):
        """Delete the account (the customer stays)."""
        portal.delete_account(account_id, current_principal())
        db.session.commit()


@portal_accounts_blp.route("/<uuid:account_id>/invitation")
class PortalAccountInvitation(MethodView):
    @portal_accounts_blp.response(200, SendResult)
    def post(self, account_id: uuid.UUID):
        """Send the invitation again (earlier links stop working)."""
        result = portal.resend_invitation(account_id, current_principal())
        db.session.commit()
        return result


BLUEPRINTS = (teams_blp, inbox_blp, consents_blp, customer_consents_blp, portal_accounts_blp)

__all__ = ["BLUEPRINTS"]
