"""The SQLAlchemy declarative base, the Flask-SQLAlchemy extension and portable column types."""

from __future__ import annotations

import datetime as dt
import secrets
import time
import uuid

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, registry

# Constraint names are deterministic so that migrations can name what they alter,
# on SQLite (batch mode) as on PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def new_id() -> uuid.UUID:
    """A time-ordered UUID (version 7): unguessable, yet index-friendly like a sequence.

    Returned as a plain ``uuid.UUID``: the ``uuid6`` subclass is not accepted by every
    driver as a bound parameter.
    """
    global _last_ms
    ms = time.time_ns() // 1_000_000
    if ms <= _last_ms:  # strictly increasing, as uuid6.uuid7() makes them
        ms = _last_ms + 1
    _last_ms = ms
    return uuid.UUID(int=(ms & _MS_MASK) << 80 | secrets.randbits(76) & _RANDOM | _V7)


# uuid6.uuid7()'s layout, built once rather than per id (an import makes a million):
# 48 bits of milliseconds, the version (7), 12 random bits, the variant (10), 62 random bits
_last_ms = 0
_MS_MASK = (1 << 48) - 1
_V7 = 7 << 76 | 0x8000 << 48
_RANDOM = ((1 << 76) - 1) & ~(0xF000 << 64) & ~(0xC000 << 48)


class UTCDateTime(sa.types.TypeDecorator):
    """A timestamp stored in UTC and always returned timezone-aware.

    SQLite has no timezone type; without this it hands back naive datetimes and
    comparisons with aware ones fail.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; Clientela stores aware UTC datetimes")
        return value.astimezone(dt.timezone.utc)

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value


#: JSON column: JSONB on PostgreSQL (indexable), JSON text on SQLite.
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


class Base(DeclarativeBase):
    registry = registry(
        metadata=sa.MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={
            dt.datetime: UTCDateTime(),
            uuid.UUID: sa.Uuid(),
            dict: JSONType,
            list: JSONType,
        },
    )


db = SQLAlchemy(model_class=Base, disable_autonaming=True)
