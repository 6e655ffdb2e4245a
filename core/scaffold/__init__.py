"""``clientela plugin new NAME``: generate a plugin distribution that installs and passes its
own tests at once. The templates live beside this module (``templates/``)."""

from __future__ import annotations

import re
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from clientela.core import HOOK_API_VERSION, __version__
from clientela.core.errors import ValidationError

TEMPLATES = Path(__file__).parent / "templates"
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,30}$")


def context_for(name: str) -> dict[str, str]:
    if not NAME_RE.match(name):
        raise ValidationError(
            {"name": ["use 2-31 lower-case letters, digits and _, starting with a letter"]})
    camel = "".join(part.capitalize() for part in name.split("_"))
    major = HOOK_API_VERSION.split(".")[0]
    return {
        "name": name,
        "package": f"clientela_{name}",
        "distribution": f"clientela-{name.replace('_', '-')}",
        "model": f"{camel}Record",
        "table": f"{name}_records",
        "resource": f"{name.replace('_', '-')}-records",
        "hook_api": f">={HOOK_API_VERSION},<{int(major) + 1}",
        "core_version": __version__,
        "core_revision": "0002_roles",
    }


def generate(name: str, directory: str) -> Path:
    """Write the distribution into ``directory/clientela-NAME``; refuses to overwrite."""
    ctx = context_for(name)
    target = Path(directory) / ctx["distribution"]
    if target.exists():
        raise ValidationError({"dir": [f"{target} already exists"]})
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), undefined=StrictUndefined,
                      keep_trailing_newline=True)
    for template in sorted(TEMPLATES.rglob("*.tmpl")):
        relative = template.relative_to(TEMPLATES).as_posix()[: -len(".tmpl")]
        relative = relative.replace("PACKAGE", ctx["package"]).replace("NAME", name)
        out = target / relative
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(env.get_template(template.relative_to(TEMPLATES).as_posix()).render(**ctx),
                       encoding="utf-8")
    return target


__all__ = ["generate"]
