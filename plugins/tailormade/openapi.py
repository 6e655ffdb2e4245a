"""The tenant's OpenAPI document: the API's own, plus the tenant's custom fields and
custom objects (``GET /api/v1/custom-fields/openapi.json``).

The public ``/api/v1/openapi.json`` is the same for every tenant (it is served before
authentication and cached); this one is per tenant: each entity type with custom fields
gets a ``CustomAttributes_<type>`` schema (types, formats, bounds, choices, patterns,
required), the ``attributes`` property of that type's schemas points to it, and each
custom object gets its own record schema and paths ``/api/v1/custom/<key>``.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from flask import current_app

from clientela.core import access
from clientela.core.access import Principal
from clientela.plugins.tailormade import custom_fields
from clientela.plugins.tailormade.custom_fields import CUSTOM_PREFIX
from clientela.plugins.tailormade.models import CustomField, CustomObject

BASE = {
    "text": {"type": "string"}, "long_text": {"type": "string"},
    "integer": {"type": "integer"}, "decimal": {"type": ["number", "string"],
                                                "format": "decimal"},
    "boolean": {"type": "boolean"}, "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
    "single_choice": {"type": "string"}, "multiple_choice": {"type": "array",
                                                             "uniqueItems": True},
    "email": {"type": "string", "format": "email"}, "url": {"type": "string", "format": "uri"},
    "phone": {"type": "string", "description": "E.164, e.g. +390612345678"},
    "reference": {"type": "string", "format": "uuid"},
}


def field_schema(field: CustomField) -> dict[str, Any]:
    schema = copy.deepcopy(BASE[field.type])
    if field.label:
        schema["title"] = field.label
    if field.description:
        schema["description"] = field.description
    if field.type == "single_choice":
        schema["enum"] = list(field.choices)
    if field.type == "multiple_choice":
        schema["items"] = {"type": "string", "enum": list(field.choices)}
    if field.type == "reference":
        schema["x-clientela-target"] = field.target
    for bound, value in (("min", field.min_value), ("max", field.max_value)):
        if value is None:
            continue
        if field.type in ("integer", "decimal"):
            schema["minimum" if bound == "min" else "maximum"] = value
        elif field.type in custom_fields.STRING_TYPES:
            schema["minLength" if bound == "min" else "maxLength"] = value
        elif field.type == "multiple_choice":
            schema["minItems" if bound == "min" else "maxItems"] = value
        else:  # dates and times: no JSON Schema keyword; say it
            schema[f"x-clientela-{bound}"] = value
    if field.pattern:
        schema["pattern"] = field.pattern
    if field.default_value is not None:
        schema["default"] = field.default_value
    if field.is_unique:
        schema["x-clientela-unique"] = True
    return schema


def schema_name(entity_type: str) -> str:
    return "CustomAttributes_" + re.sub(r"[^A-Za-z0-9_]", "_", entity_type)


def _schemas_of(entity_type: str, schemas: dict[str, Any]) -> list[str]:
    """The component schemas that describe records of ``entity_type`` (by name: the
    singular of its last word, ``operational_deals`` -> ``Deal...``), with attributes."""
    word = entity_type.split("_")[-1]
    singular = word[:-1] if word.endswith("s") else word
    prefix = singular[:1].upper() + singular[1:]
    return [name for name, schema in schemas.items()
            if (name == prefix or (name.startswith(prefix) and name[len(prefix):][:1].isupper()))
            and "attributes" in (schema.get("properties") or {})]


def tenant_document(principal: Principal) -> dict[str, Any]:
    access.require(principal, "customization:read")
    document = copy.deepcopy(current_app.extensions["clientela"].api.spec.to_dict())
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    fields = custom_fields.list_fields(principal)
    by_type: dict[str, list[CustomField]] = {}
    for field in fields:
        by_type.setdefault(field.entity_type, []).append(field)
    from clientela.core.db import db
    import sqlalchemy as sa

    objects = db.session.execute(sa.select(CustomObject).order_by(CustomObject.key)).scalars()
    for obj in objects:
        by_type.setdefault(f"{CUSTOM_PREFIX}{obj.key}", [])
    for entity_type, defined in by_type.items():
        name = schema_name(entity_type)
        schemas[name] = {
            "type": "object", "x-clientela-entity-type": entity_type,
            "description": f"The custom fields of {entity_type}; other keys are kept unchecked",
            "properties": {f.key: field_schema(f) for f in defined},
            **({"required": [f.key for f in defined if f.required and f.default_value is None]}
               if any(f.required and f.default_value is None for f in defined) else {}),
        }
        reference = {"$ref": f"#/components/schemas/{name}"}
        if entity_type.startswith(CUSTOM_PREFIX):
            key = entity_type[len(CUSTOM_PREFIX):]
            _object_paths(document, schemas, key, reference)
            continue
        for schema in _schemas_of(entity_type, schemas):
            schemas[schema]["properties"]["attributes"] = reference
    return document


def _object_paths(document: dict, schemas: dict, key: str, reference: dict) -> None:
    """``/api/v1/custom/<key>`` paths whose record schemas carry the object's fields."""
    paths = document.get("paths", {})
    for template in ("/api/v1/custom/{object}", "/api/v1/custom/{object}/{record_id}"):
        if template not in paths:
            continue
        item = copy.deepcopy(paths[template])
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            operation["parameters"] = [p for p in operation.get("parameters", [])
                                       if p.get("name") != "object"]
            operation["tags"] = [f"custom:{key}"]
            if "operationId" in operation:
                operation["operationId"] = f"{operation['operationId']}_{key}"
        item["parameters"] = [p for p in item.get("parameters", []) if p.get("name") != "object"]
        text = _retarget(item, key, schemas, reference)
        paths[template.replace("{object}", key)] = text


def _retarget(item: Any, key: str, schemas: dict, reference: dict) -> Any:
    """``item`` with every record schema replaced by the object's own record schemas."""
    if isinstance(item, dict):
        ref = item.get("$ref", "")
        if ref.startswith("#/components/schemas/Record"):
            base = ref.rsplit("/", 1)[1]
            own = f"{base}_{re.sub(r'[^A-Za-z0-9_]', '_', key)}"
            if own not in schemas:
                schemas[own] = copy.deepcopy(schemas[base])
                schemas[own].setdefault("properties", {})["attributes"] = reference
            return {**item, "$ref": f"#/components/schemas/{own}"}
        return {k: _retarget(v, key, schemas, reference) for k, v in item.items()}
    if isinstance(item, list):
        return [_retarget(v, key, schemas, reference) for v in item]
    return item
