"""The analytical plugin's web UI hooks: its pages, navigation entries, the dashboard widget
"RFM segment sizes" and the customer 360° panel (RFM segment, lifetime value, churn risk)."""

from __future__ import annotations

from clientela.core import hookimpl


@hookimpl(specname="clientela_web_blueprints")
def analytical_web_pages(register):
    from clientela.plugins.analytical import web

    register(web.bp)


@hookimpl(specname="clientela_web_nav")
def analytical_web_nav(principal):
    from clientela.core.web.i18n import _l

    return [{"label": _l("Segments"), "endpoint": "analytical_web.segment_list", "order": 60,
             "permission": "analytics:read"},
            {"label": _l("RFM"), "endpoint": "analytical_web.rfm", "order": 61,
             "permission": "analytics:read"}]


@hookimpl(specname="clientela_web_dashboard_widgets")
def analytical_dashboard_widgets(principal):
    if not principal.can("analytics:read"):
        return None
    from markupsafe import Markup, escape

    from clientela.core.web import charts
    from clientela.core.web.i18n import _
    from clientela.plugins.analytical import metrics, warehouse
    from clientela.plugins.analytical.web import segment_label

    title = _("RFM segment sizes")

    def note(text: str) -> Markup:
        return Markup(f"<p class='empty'>{escape(text)}</p>")

    if not warehouse.exists():
        html = note(_("No purchases in the warehouse yet."))
    else:
        try:
            # the dashboard must not hang on a refresh running in another process
            with warehouse.connect(wait=2) as con:
                rows = metrics.rfm_summary(con)
        except warehouse.WarehouseBusy:
            html = note(_("The warehouse is being refreshed; try again shortly."))
        else:
            html = charts.bar_chart([(segment_label(r["segment"]), r["customers"])
                                     for r in rows], label=title)
    return [{"key": "rfm_segment_sizes", "title": title, "order": 60, "html": html}]


@hookimpl(specname="clientela_web_customer_panels")
def analytical_customer_panels(customer_id, principal):
    if not principal.can("analytics:read"):
        return None
    from flask import render_template
    from markupsafe import Markup

    from clientela.core.web.i18n import _
    from clientela.plugins.analytical import metrics, services, warehouse
    from clientela.plugins.analytical.web import churn_label, segment_label

    if not warehouse.exists():
        data = None
    else:
        try:
            # the 360° page must not hang on a refresh running in another process
            data = services.summary(customer_id, with_offers=False, wait=2)
        except warehouse.WarehouseBusy:
            data = {"busy": True}
    html = render_template("analytical/panel.html", data=data, segment_label=segment_label,
                           churn_label=churn_label,
                           currency=metrics.setting("ANALYTICAL_CURRENCY"))
    return [{"key": "analytics", "title": _("Analytics"), "order": 50, "html": Markup(html)}]


__all__ = ["analytical_web_pages", "analytical_web_nav", "analytical_dashboard_widgets",
           "analytical_customer_panels"]
