"""The analytical plugin's operational tables: saved segments and saved import mappings."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clientela.core.models import Entity

MAPPING_KINDS = ("transactions", "attributes")


class AnalyticalSegment(Entity):
    """A saved, rule-based segment: customers whose analytics meet every rule.

    ``rules`` is a list of ``{"field", "op", "value"}`` (see ``segments.FIELDS``); the
    members are computed from the warehouse when asked, so a segment is always current.
    """

    __tablename__ = "analytical_segments"

    name: Mapped[str] = mapped_column(sa.String(100))
    description: Mapped[str] = mapped_column(sa.String(500), default="")
    rules: Mapped[list] = mapped_column(default=list)

    __table_args__ = (sa.UniqueConstraint("tenant_id", "name"),)


class AnalyticalImportMapping(Entity):
    """A named column mapping for transaction or customer-attribute files, saved per tenant.

    ``columns`` maps a header of the file to a field (``{"Order no": "order_id"}``);
    ``options`` holds the file's conventions (``date_format``, ``decimal_separator``,
    ``currency``, ``source``).
    """

    __tablename__ = "analytical_import_mappings"

    name: Mapped[str] = mapped_column(sa.String(100))
    kind: Mapped[str] = mapped_column(sa.String(20))
    columns: Mapped[dict] = mapped_column(default=dict)
    options: Mapped[dict] = mapped_column(default=dict)

    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "kind", "name"),
        sa.CheckConstraint(f"kind IN {MAPPING_KINDS}", name="kind"),
    )


MODELS = (AnalyticalSegment, AnalyticalImportMapping)
