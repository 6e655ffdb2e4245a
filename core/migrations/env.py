"""Alembic environment: runs on the connection of the Flask app that invoked it."""

from alembic import context

from clientela.core.db import UTCDateTime, db
from clientela.core.migrations import include_object


def render_item(type_, obj, autogen_context):
    """Render the core's portable types as plain SQLAlchemy types, so revisions stand alone."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and obj.__class__.__name__ == "JSON" and obj._variant_mapping:
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return "sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')"
    return False


config = context.config
app = config.attributes["flask_app"]

with app.app_context():
    with db.engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=db.metadata,
            render_as_batch=True,  # SQLite alters tables by copying them
            compare_type=True,
            render_item=render_item,
            include_object=include_object,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
