"""Saved import mappings: column mappings and value transformations, per tenant.

They are the core's ``ImportMapping`` rows (so ``clientela import customers --mapping
NAME`` and ``POST /api/v1/customers/import?mapping=NAME`` use them), with the
transformations, the kind of import and a description in the row's ``attributes``: no
schema change in the core. Plugins' imports read them with
``clientela.core.transfer.get_saved_mapping`` and apply ``clientela.core.transforms``.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import sqlalchemy as sa

from clientela.core import access, transfer
from clientela.core import transforms as value_transforms
from clientela.core.access import Principal
from clientela.core.db import db
from clientela.core.errors import Conflict, NotFound, ValidationError
from clientela.core.models import ImportMapping

KIND = re.compile(r"^[a-z][a-z0-9_:]{0,62}$")


def as_dict(row: ImportMapping) -> dict[str, Any]:
    extra = row.attributes or {}
    return {"id": row.id, "name": row.name, "kind": extra.get("kind", "customers"),
            "description": extra.get("description", ""), "columns": dict(row.columns),
            "transforms": dict(extra.get("transforms") or {}), "created_at": row.created_at,
            "updated_at": row.updated_at}


def _check(values: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    name = (values.get("name") or "").strip()
    if not 0 < len(name) <= 100:
        errors["name"] = ["give a name of 1-100 characters"]
    kind = values.get("kind") or "customers"
    if not KIND.match(kind):
        errors["kind"] = ["the import it is for: customers, or a plugin's import name"]
    columns = values.get("columns") or {}
    if not isinstance(columns, dict) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in columns.items()):
        errors["columns"] = ['an object {"Header in the file": "field" or null}']
    elif kind == "customers":
        try:
            transfer.load_mapping(columns)
        except transfer.ImportFileError as exc:
            errors["columns"] = [str(exc)]
    try:
        value_transforms.check_transforms(values.get("transforms") or {})
    except ValueError as exc:
        errors["transforms"] = [str(exc)]
    if errors:
        raise ValidationError(errors)
    return {**values, "name": name, "kind": kind}


def list_mappings(principal: Principal, kind: str | None = None) -> list[dict[str, Any]]:
    access.require(principal, "customization:read")
    rows = [as_dict(row) for row in transfer.list_mappings()]
    return [row for row in rows if kind is None or row["kind"] == kind]


def _get(mapping_id: uuid.UUID) -> ImportMapping:
    row = db.session.execute(
        sa.select(ImportMapping).where(ImportMapping.id == mapping_id)).scalar_one_or_none()
    if row is None:
        raise NotFound("import mapping not found")
    return row


def get_mapping(principal: Principal, mapping_id: uuid.UUID) -> dict[str, Any]:
    access.require(principal, "customization:read")
    return as_dict(_get(mapping_id))


def _taken(name: str, own: uuid.UUID | None = None) -> bool:
    stmt = sa.select(ImportMapping.id).where(ImportMapping.name == name)
    if own is not None:
        stmt = stmt.where(ImportMapping.id != own)
    return db.session.execute(stmt).first() is not None


def create_mapping(principal: Principal, data: dict[str, Any]) -> dict[str, Any]:
    access.require(principal, "customization:write")
    values = _check(dict(data))
    if _taken(values["name"]):
        raise Conflict(f"an import mapping '{values['name']}' already exists")
    row = ImportMapping(name=values["name"], columns=values.get("columns") or {},
                        attributes={"kind": values["kind"],
                                    "description": values.get("description") or "",
                                    "transforms": values.get("transforms") or {}})
    db.session.add(row)
    db.session.flush()
    return as_dict(row)


def update_mapping(principal: Principal, mapping_id: uuid.UUID, data: dict[str, Any]
                   ) -> dict[str, Any]:
    access.require(principal, "customization:read")
    row = _get(mapping_id)
    access.require(principal, "customization:write")
    values = _check({**as_dict(row), **data})
    if values["name"] != row.name and _taken(values["name"], row.id):
        raise Conflict(f"an import mapping '{values['name']}' already exists")
    row.name, row.columns = values["name"], values.get("columns") or {}
    row.attributes = {**(row.attributes or {}), "kind": values["kind"],
                      "description": values.get("description") or "",
                      "transforms": values.get("transforms") or {}}
    db.session.flush()
    return as_dict(row)


def delete_mapping(principal: Principal, mapping_id: uuid.UUID) -> None:
    access.require(principal, "customization:read")
    row = _get(mapping_id)
    access.require(principal, "customization:write")
    db.session.delete(row)
    db.session.flush()
