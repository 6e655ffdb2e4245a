"""The collaborative plugin's web UI hooks: the inbox and portal pages, the navigation entry,
and the customer 360° panel (consent and recent messages)."""

from __future__ import annotations

from clientela.core import hookimpl


@hookimpl(specname="clientela_web_blueprints")
def collaborative_web_pages(register):
    from clientela.plugins.collaborative import web, web_portal

    register(web.bp)
    register(web_portal.bp)


@hookimpl(specname="clientela_web_nav")
def collaborative_web_nav(principal):
    from clientela.core.web.i18n import _l

    return [{"label": _l("Inbox"), "endpoint": "collaborative_web.items", "order": 30,
             "permission": "inbox:read"}]


@hookimpl(specname="clientela_web_customer_panels")
def collaborative_customer_panels(customer_id, principal):
    from flask import render_template
    from markupsafe import Markup

    from clientela.core.db import db
    from clientela.core.web.i18n import _
    from clientela.plugins.collaborative import consent, inbox
    from clientela.plugins.collaborative.collab_models import InboxItem
    from clientela.plugins.collaborative.web import status_label
    from clientela.plugins.collaborative.web_portal import PURPOSE_LABELS

    panels = []
    if principal.can("consents:read"):
        found = consent.for_customer(customer_id, principal)
        panels.append({"key": "consent", "title": _("Consent"), "order": 40,
                       "html": Markup(render_template(
                           "collaborative/panel_consent.html", current=found["current"],
                           purpose_labels=PURPOSE_LABELS))})
    if principal.can("inbox:read"):
        items = db.session.execute(
            inbox.items_query(principal, customer_id=customer_id)
            .order_by(InboxItem.received_at.desc(), InboxItem.id).limit(5)).scalars().all()
        panels.append({"key": "inbox", "title": _("Recent messages"), "order": 41,
                       "html": Markup(render_template(
                           "collaborative/panel_inbox.html", items=items,
                           status_label=status_label))})
    return panels


__all__ = ["collaborative_web_pages", "collaborative_web_nav", "collaborative_customer_panels"]
