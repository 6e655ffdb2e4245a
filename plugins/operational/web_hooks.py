"""The operational plugin's web UI hooks: its pages, navigation entries, dashboard widgets and
customer 360° panels, each limited to what the user may read through the API."""

from __future__ import annotations

import decimal

from markupsafe import Markup

from clientela.core import hookimpl
from clientela.core.web.i18n import _, _l


@hookimpl(specname="clientela_web_blueprints")
def operational_web_pages(register):
    from clientela.plugins.operational import web

    register(web.bp)


@hookimpl(specname="clientela_web_nav")
def operational_web_nav(principal):
    return [
        {"label": _l("My work"), "endpoint": "operational_web.my_work", "order": 12,
         "permission": "tasks:read"},
        {"label": _l("Leads"), "endpoint": "operational_web.leads", "order": 20,
         "permission": "leads:read"},
        {"label": _l("Deals"), "endpoint": "operational_web.kanban", "order": 22,
         "permission": "deals:read"},
        {"label": _l("Cases"), "endpoint": "operational_web.cases", "order": 24,
         "permission": "cases:read"},
        {"label": _l("Campaigns"), "endpoint": "operational_web.campaigns", "order": 26,
         "permission": "campaigns:read"},
        {"label": _l("Pipelines"), "endpoint": "operational_web.pipelines", "order": 40,
         "section": "settings", "permission": "pipelines:write"},
    ]


def _pipeline_widget(principal):
    from clientela.core.web import charts
    from clientela.plugins.operational import services as ops

    pipeline = ops.default_pipeline()
    if pipeline is None:
        return None
    from flask import current_app

    currency = current_app.config["OPERATIONAL_DEFAULT_CURRENCY"]
    board = ops.board(pipeline.id, principal, limit=0)
    data = [(column["stage"].name,
             decimal.Decimal(column["totals"].get(currency, "0")))
            for column in board["stages"]]
    title = _("Pipeline by stage")
    return {"key": "pipeline_by_stage", "title": title, "order": 20,
            "html": charts.bar_chart(data, label=f"{title} ({pipeline.name})", money=currency)}


def _forecast_widget(principal):
    from clientela.core.web import charts
    from clientela.plugins.operational.web import forecast_summary

    summary = forecast_summary(principal)
    title = _("Forecast against target")
    label = _("Forecast %(period)s: won and weighted pipeline against target",
              period=summary["period"])
    return {"key": "forecast_vs_target", "title": title, "order": 22,
            "html": charts.progress_bar(summary["expected"], summary["figures"]["target"],
                                        label=label, money=summary["currency"])}


def _cases_widget(principal):
    from flask import url_for
    from markupsafe import escape

    from clientela.core.db import db, utcnow
    from clientela.core.web import charts
    from clientela.plugins.operational import cases
    from clientela.plugins.operational.web_work import SLA_LABELS, sla_state

    now = utcnow()
    counts = {"on_time": 0, "at_risk": 0, "breached": 0, "none": 0}
    for case in db.session.execute(cases.cases_query(principal, open=True)).scalars():
        counts[sla_state(case, now)["key"]] += 1
    title = _("Open cases by SLA status")
    data = [(str(SLA_LABELS[key]), value) for key, value in counts.items()]
    see = _("See the cases")
    link = f"<p><a href='{escape(url_for('operational_web.cases'))}'>{escape(see)}</a></p>"
    return {"key": "cases_by_sla", "title": title, "order": 24,
            "html": charts.bar_chart(data, label=title) + Markup(link)}


def _campaigns_widget(principal):
    from flask import render_template

    from clientela.core.db import db
    from clientela.plugins.operational import campaigns
    from clientela.plugins.operational.campaign_models import Campaign
    from clientela.plugins.operational.web import label
    from clientela.plugins.operational.web_work import CAMPAIGN_STATUS_LABELS

    recent = db.session.execute(
        campaigns.campaigns_query(principal)
        .order_by(Campaign.created_at.desc(), Campaign.id).limit(5)).scalars().all()
    rows = [(c, campaigns.results(c.id, principal)) for c in recent]
    return {"key": "campaign_results", "title": _("Campaign results"), "order": 26,
            "html": Markup(render_template(
                "operational/_campaign_widget.html", rows=rows,
                campaign_status=lambda s: label(CAMPAIGN_STATUS_LABELS, s)))}


@hookimpl(specname="clientela_web_dashboard_widgets")
def operational_web_widgets(principal):
    widgets = []
    for permission, build in (("deals:read", _pipeline_widget),
                              ("forecast:read", _forecast_widget),
                              ("cases:read", _cases_widget),
                              ("campaigns:read", _campaigns_widget)):
        if principal.can(permission):
            widget = build(principal)
            if widget is not None:
                widgets.append(widget)
    return widgets


@hookimpl(specname="clientela_web_customer_panels")
def operational_web_panels(customer_id, principal):
    from flask import render_template

    from clientela.core.db import db
    from clientela.plugins.operational import cases
    from clientela.plugins.operational import services as ops
    from clientela.plugins.operational.models import Deal
    from clientela.plugins.operational.web import DEAL_STATUS_LABELS, label
    from clientela.plugins.operational.web_work import sla_state
    from clientela.plugins.operational.work_models import ServiceCase

    panels = []
    if principal.can("deals:read"):
        deals = db.session.execute(
            ops.deals_query(principal, customer_id=customer_id)
            .order_by(Deal.created_at.desc(), Deal.id).limit(20)).scalars().all()
        panels.append({"key": "deals", "title": _("Deals"), "order": 20, "html": Markup(
            render_template("operational/_deals_panel.html", deals=deals,
                            status_label=lambda s: label(DEAL_STATUS_LABELS, s)))})
    if principal.can("cases:read"):
        open_cases = db.session.execute(
            cases.cases_query(principal, customer_id=customer_id, open=True)
            .order_by(ServiceCase.created_at.desc(), ServiceCase.id).limit(20)).scalars().all()
        panels.append({"key": "cases", "title": _("Open cases"), "order": 22,
                       "html": Markup(render_template(
                           "operational/_cases_panel.html", cases=open_cases,
                           sla={c.id: sla_state(c) for c in open_cases}))})
    return panels


__all__ = ["operational_web_pages", "operational_web_nav", "operational_web_widgets",
           "operational_web_panels"]
