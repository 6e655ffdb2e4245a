"""Operational CRM: leads and web forms, pipelines and deals, forecasts, tasks, service cases with SLAs, campaigns."""

name = "operational"
version = "0.1.0"
requires: tuple[str, ...] = ()
