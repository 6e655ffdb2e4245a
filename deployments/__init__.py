"""Deployment profiles: ``onprem`` (one tenant, SQLite by default) and ``hosted`` (many tenants)."""
