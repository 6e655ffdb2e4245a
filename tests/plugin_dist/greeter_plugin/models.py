import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clientela.core.models import Entity, tenant_fk


class Greeting(Entity):
    __tablename__ = "greeter_greetings"

    customer_id: Mapped[uuid.UUID]
    message: Mapped[str] = mapped_column(sa.String(200))

    __table_args__ = (tenant_fk("customer_id", "customers", ondelete="CASCADE"),)
