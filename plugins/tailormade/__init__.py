"""Tailor-made CRM: custom fields and objects, automation rules, webhooks, import mappings."""

name = "tailormade"
version = "0.1.0"
requires: tuple[str, ...] = ()
