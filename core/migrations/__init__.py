"""Alembic, with the core's own version branch and one branch per plugin.

The core's revisions live in ``core/migrations/versions`` (branch ``core``); a plugin's
in ``<plugin package>/migrations/versions`` with the plugin's name as branch label and a
``depends_on`` on the core revision it needs. ``upgrade`` applies the core branch and
the branches of the enabled plugins; the folders of every *installed* plugin stay on
the search path so that a disabled plugin's applied revisions remain known.
"""

from __future__ import annotations

import os

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask

from clientela.core.db import db
from clientela.core.errors import PluginError

HERE = os.path.dirname(os.path.abspath(__file__))
CORE_BRANCH = "core"

#: database objects that only migrations make, and that the models do not describe:
#: the SQLite FTS5 table of customer search (with its shadow tables) and the
#: PostgreSQL expression indexes of customer search (revision 0006_search)
MIGRATION_ONLY_TABLE_PREFIXES = ("customers_fts",)
MIGRATION_ONLY_INDEX_PREFIXES = ("ix_customers_search_",)


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic's ``include_object``: leave out of autogenerate what only migrations make.

    Used by ``env.py`` and by the test that compares the migrated schema with the models,
    so both see the same schema.
    """
    if not reflected or compare_to is not None or name is None:
        return True
    if type_ == "table":
        return not name.startswith(MIGRATION_ONLY_TABLE_PREFIXES)
    if type_ == "index":
        return not name.startswith(MIGRATION_ONLY_INDEX_PREFIXES)
    return True


def _registry(app: Flask):
    return app.extensions["clientela"].plugins


def alembic_config(app: Flask) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", HERE)
    cfg.set_main_option("path_separator", "os")
    locations = [os.path.join(HERE, "versions")]
    for info in _registry(app).plugins.values():
        path = info.migrations_path
        if path:
            locations.append(path)
    cfg.set_main_option("version_locations", os.pathsep.join(locations))
    cfg.attributes["flask_app"] = app
    return cfg


def branches(app: Flask) -> list[str]:
    """The branches that must be applied: the core's and each enabled plugin's, in order."""
    names = [CORE_BRANCH]
    plugin_branches = [info.name for info in _registry(app).enabled() if info.migrations_path]
    if plugin_branches:
        script = ScriptDirectory.from_config(alembic_config(app))
        known = {label for rev in script.walk_revisions() for label in rev.branch_labels}
        for name in plugin_branches:
            if name not in known:
                raise PluginError(name, "has a migrations/versions folder but no revision "
                                        f"with branch_labels = ('{name}',)")
    return names + plugin_branches


def expected_heads(app: Flask) -> dict[str, str]:
    script = ScriptDirectory.from_config(alembic_config(app))
    heads = {}
    for branch in branches(app):
        heads[branch] = script.get_revision(f"{branch}@head").revision
    return heads


def applied_heads(app: Flask) -> set[str]:
    with db.engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def pending_heads(app: Flask) -> list[str]:
    """Branches whose head revision is not applied (empty when the schema is current)."""
    script = ScriptDirectory.from_config(alembic_config(app))
    applied = applied_heads(app)
    pending = []
    for branch, head in expected_heads(app).items():
        applied_here = {
            rev for rev in applied if head == rev or head in _ancestors_of(script, rev)
        }
        if not applied_here:
            pending.append(branch)
    return pending


def _ancestors_of(script: ScriptDirectory, revision: str) -> set[str]:
    return {r.revision for r in script.iterate_revisions(revision, "base")}


def upgrade(app: Flask) -> list[str]:
    """Apply every pending revision of the core and the enabled plugins; returns branches."""
    cfg = alembic_config(app)
    done = []
    for branch in branches(app):
        command.upgrade(cfg, f"{branch}@head")
        done.append(branch)
    with db.engine.begin() as connection:
        app.extensions["clientela"].profile.after_upgrade(app, connection)
    return done
