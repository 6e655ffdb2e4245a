"""The PRM plugin's web hooks: its staff pages, the partner portal's pages, navigation."""

from __future__ import annotations

from clientela.core import hookimpl
from clientela.core.web.i18n import _l


@hookimpl(specname="clientela_web_blueprints")
def prm_web_pages(register):
    from clientela.plugins.prm import web, web_portal

    register(web.bp)
    register(web_portal.bp)


@hookimpl(specname="clientela_web_nav")
def prm_web_nav(principal):
    return [
        {"label": _l("Partners"), "endpoint": "prm_web.partners", "order": 40,
         "permission": "partners:read"},
        {"label": _l("Deal registrations"), "endpoint": "prm_web.registrations", "order": 41,
         "permission": "registrations:read"},
        {"label": _l("Commissions"), "endpoint": "prm_web.commissions", "order": 42,
         "permission": "commissions:read"},
    ]


__all__ = ["prm_web_pages", "prm_web_nav"]
