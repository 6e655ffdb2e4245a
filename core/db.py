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

    The 12 bits after the version are a counter within the millisecond (RFC 9562, 6.2,
    method 1), so ids made in one process strictly increase and 4,096 fit in a millisecond
    before the timestamp has to run ahead of the clock (a bulk import makes tens per
    millisecond); 62 random bits remain. Returned as a plain ``uuid.UUID``, which every
    driver accepts as a bound parameter.
    """
    global _last_stamp
    stamp = time.time_ns() // 1_000_000 << 12
    if stamp <= _last_stamp:
        stamp = _last_stamp + 1  # the next count; past 4,095 it carries into the millisecond
    _last_stamp = stamp
    return uuid.UUID(int=(stamp >> 12 & _MS_MASK) << 80 | (stamp & 0xFFF) << 64
                     | secrets.randbits(62) | _V7)


# the layout of RFC 9562's version 7, built once rather than per id (an import makes a
# million): 48 bits of milliseconds, the version (7), the 12-bit counter, the variant (10),
# 62 random bits
_last_stamp = 0
_MS_MASK = (1 << 48) - 1
_V7 = 7 << 76 | 0b10 << 62


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
