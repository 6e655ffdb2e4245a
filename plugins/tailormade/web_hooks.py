"""The tailor-made plugin's web hooks: its settings pages and their menu entries."""

from __future__ import annotations

from clientela.core import hookimpl
from clientela.core.web.i18n import _l


@hookimpl(specname="clientela_web_blueprints")
def tailormade_web_pages(register):
    from clientela.plugins.tailormade import web

    register(web.bp)


@hookimpl(specname="clientela_web_nav")
def tailormade_web_nav(principal):
    return [
        {"label": _l("Custom fields"), "endpoint": "tailormade_web.fields", "order": 60,
         "section": "settings", "permission": "customization:read"},
        {"label": _l("Custom objects"), "endpoint": "tailormade_web.objects", "order": 61,
         "section": "settings", "permission": "customization:read"},
        {"label": _l("Automations"), "endpoint": "tailormade_web.rules", "order": 62,
         "section": "settings", "permission": "automations:read"},
        {"label": _l("Webhooks"), "endpoint": "tailormade_web.hooks", "order": 63,
         "section": "settings", "permission": "webhooks:read"},
    ]


__all__ = ["tailormade_web_pages", "tailormade_web_nav"]
