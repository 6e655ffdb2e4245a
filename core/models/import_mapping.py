"""``ImportMapping``: a tenant's saved column mapping for customer imports."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clientela.core.models.entity import Entity


class ImportMapping(Entity):
    """A named column mapping (``{"Header in the file": "customer field"}``), saved per tenant.

    ``clientela import customers FILE --mapping NAME`` reuses it, so a file exported each
    month from the same other system needs its mapping written once.
    """

    __tablename__ = "import_mappings"

    name: Mapped[str] = mapped_column(sa.String(100))
    #: ``{header: field}``; a field of ``None`` ignores the column
    columns: Mapped[dict] = mapped_column(default=dict)

    __table_args__ = (sa.UniqueConstraint("tenant_id", "name"),)
