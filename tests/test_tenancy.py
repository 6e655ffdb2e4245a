"""Tenant isolation in the ORM: scoped queries, stamped inserts, loud failures, Citus-ready keys."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from clientela.core import services, tenancy
from clientela.core.app import tenant_key_problems
from clientela.core.db import db
from clientela.core.errors import CrossTenantError, NoTenantError
from clientela.core.models import AuditEvent, Customer, Entity, Interaction, User


@pytest.fixture
def two_tenants(make_tenant):
    """Tenants A and B with one customer (and one interaction) each."""
    a, b = make_tenant("a"), make_tenant("b")
    ids = {}
    for t, name in ((a, "Alice"), (b, "Bob")):
        with tenancy.tenant_context(t.id):
            c = services.create_customer({"first_name": name, "email": f"{name}@example.com"})
            services.record_interaction(c.id, "phone", subject=f"call {name}")
            db.session.commit()
            ids[t.slug] = c.id
    return a, b, ids


def test_query_as_tenant_a_never_returns_tenant_b_rows(two_tenants):
    a, b, ids = two_tenants
    with tenancy.tenant_context(a.id):
        names = db.session.execute(db.select(Customer.display_name)).scalars().all()
        assert names == ["Alice"]
        assert db.session.execute(db.select(sa.func.count()).select_from(Customer)).scalar() == 1
        joined = db.session.execute(
            db.select(Interaction.subject).join(
                Customer, (Customer.tenant_id == Interaction.tenant_id)
                & (Customer.id == Interaction.customer_id)
            )
        ).scalars().all()
        assert joined == ["call Alice"]
        # B's row asked for by its id is simply not there
        assert db.session.execute(
            db.select(Customer).where(Customer.id == ids[b.slug])
        ).scalar_one_or_none() is None
        assert db.session.get(Customer, (a.id, ids[b.slug])) is None


def test_orm_update_and_delete_statements_touch_only_the_current_tenant(two_tenants):
    a, b, ids = two_tenants
    with tenancy.tenant_context(a.id):
        db.session.execute(sa.update(Customer).values(stage="former"))
        db.session.execute(sa.delete(Interaction))
        db.session.commit()
    with tenancy.tenant_context(b.id):
        bob = db.session.execute(db.select(Customer)).scalar_one()
        assert bob.stage == "lead"
        assert db.session.execute(db.select(sa.func.count()).select_from(Interaction)).scalar() == 1


def test_reading_tenant_data_with_no_tenant_raises(app_ctx):
    with pytest.raises(NoTenantError):
        db.session.execute(db.select(Customer)).all()


def test_writing_with_no_tenant_raises(app_ctx):
    db.session.add(Customer(display_name="Nobody"))
    with pytest.raises(NoTenantError):
        db.session.flush()


def test_bulk_insert_with_no_tenant_raises(app_ctx):
    with pytest.raises(NoTenantError):
        db.session.execute(sa.insert(Customer), [{"display_name": "x"}])


def test_bulk_insert_is_stamped_with_the_current_tenant(tenant, make_tenant):
    db.session.execute(sa.insert(Customer), [{"display_name": "Bulk 1"}, {"display_name": "B 2"}])
    db.session.commit()
    rows = db.session.execute(db.select(Customer.tenant_id)).scalars().all()
    assert rows == [tenant.id, tenant.id]
    other = make_tenant("o")
    with pytest.raises(CrossTenantError):
        db.session.execute(sa.insert(Customer), [{"display_name": "x", "tenant_id": other.id}])


def test_insert_for_another_tenant_raises(two_tenants):
    a, b, _ = two_tenants
    with tenancy.tenant_context(a.id):
        db.session.add(Customer(display_name="Intruder", tenant_id=b.id))
        with pytest.raises(CrossTenantError):
            db.session.flush()
        db.session.rollback()


def test_changing_a_row_of_another_tenant_raises(two_tenants):
    a, b, ids = two_tenants
    with tenancy.unscoped():
        bob = db.session.execute(
            db.select(Customer).where(Customer.id == ids[b.slug])
        ).scalar_one()
    with tenancy.tenant_context(a.id):
        bob.stage = "former"
        with pytest.raises(CrossTenantError):
            db.session.flush()
        db.session.rollback()
        db.session.delete(bob)
        with pytest.raises(CrossTenantError):
            db.session.flush()
        db.session.rollback()


def test_database_refuses_a_reference_to_another_tenants_row(two_tenants):
    """The composite foreign key (tenant_id, customer_id) holds even if the ORM is bypassed."""
    a, b, ids = two_tenants
    with tenancy.tenant_context(a.id):
        db.session.add(Interaction(customer_id=ids[b.slug], channel="phone",
                                   occurred_at=services.utcnow()))
        with pytest.raises(sa.exc.IntegrityError):
            db.session.flush()
        db.session.rollback()


def test_inserts_get_ids_timestamps_and_creator(tenant):
    user = services.create_user("owner@example.com", roles=["admin"])
    with tenancy.tenant_context(tenant.id, actor_id=user.id):
        c = services.create_customer({"first_name": "Ada", "phone": "+39 06 1234 5678"})
        db.session.commit()
        assert c.tenant_id == tenant.id
        assert c.id.version == 7
        assert c.created_by == user.id
        assert c.created_at.tzinfo is not None and c.updated_at == c.created_at
        assert c.phone == "+390612345678"
        before = c.updated_at
        c.stage = "customer"
        db.session.commit()
        assert c.updated_at > before


def test_every_write_is_audited_with_before_and_after(tenant):
    c = services.create_customer({"first_name": "Eve", "email": "EVE@Example.COM"})
    db.session.commit()
    c.stage = "prospect"
    db.session.commit()
    db.session.delete(c)
    db.session.commit()
    events = db.session.execute(
        db.select(AuditEvent).where(AuditEvent.entity_id == c.id).order_by(AuditEvent.id)
    ).scalars().all()
    assert [e.action for e in events] == ["insert", "update", "delete"]
    assert events[0].changes["email"] == [None, "eve@example.com"]
    assert events[1].changes == {"stage": ["lead", "prospect"]}
    assert events[2].changes["display_name"] == ["Eve", None]
    assert all(e.tenant_id == tenant.id for e in events)


def test_secrets_never_reach_the_audit_trail(tenant):
    user = services.create_user("sec@example.com", roles=["admin"], password="correct horse")
    db.session.commit()
    event = db.session.execute(
        db.select(AuditEvent).where(AuditEvent.entity_id == user.id)
    ).scalar_one()
    assert event.changes["password_hash"] == [None, "[redacted]"]


def test_audit_events_cannot_be_changed_or_deleted(tenant):
    services.create_customer({"first_name": "Mallory"})
    db.session.commit()
    event = db.session.execute(db.select(AuditEvent)).scalars().first()
    event.action = "nothing happened"
    with pytest.raises(Exception, match="cannot be changed"):
        db.session.flush()
    db.session.rollback()
    db.session.delete(db.session.execute(db.select(AuditEvent)).scalars().first())
    with pytest.raises(Exception, match="cannot be changed"):
        db.session.flush()
    db.session.rollback()


def test_every_tenant_table_has_keys_leading_with_tenant_id(app):
    """Citus-readiness, checked on the metadata of every table (plugins' included)."""
    tenant_tables = [t for t in db.metadata.sorted_tables if "tenant_id" in t.c]
    assert {"customers", "interactions", "users", "api_tokens", "audit_events"} <= {
        t.name for t in tenant_tables
    }
    problems = {t.name: tenant_key_problems(t) for t in tenant_tables}
    assert {k: v for k, v in problems.items() if v} == {}


def test_every_entity_subclass_is_a_tenant_table():
    def walk(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from walk(sub)

    for model in walk(Entity):
        assert model.__table__.primary_key.columns.keys()[0] == "tenant_id", model


def test_key_check_reports_a_table_that_does_not_lead_with_tenant_id():
    md = sa.MetaData()
    sa.Table("tenants", md, sa.Column("id", sa.Integer, primary_key=True))
    bad = sa.Table(
        "bad", md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), primary_key=True),
    )
    assert tenant_key_problems(bad) == ["primary key ['id', 'tenant_id'] does not lead with tenant_id"]


def test_tenant_context_restores_the_outer_tenant(two_tenants):
    a, b, _ = two_tenants
    with tenancy.tenant_context(a.id):
        with tenancy.tenant_context(b.id):
            assert tenancy.current_tenant_id() == b.id
        assert tenancy.current_tenant_id() == a.id
    assert tenancy.get_tenant_id() is None


def test_users_are_tenant_scoped(two_tenants):
    a, b, _ = two_tenants
    with tenancy.tenant_context(a.id):
        services.create_user("same@example.com", roles=["sales"])
        db.session.commit()
    with tenancy.tenant_context(b.id):
        assert services.find_user("same@example.com") is None
        services.create_user("same@example.com", roles=["sales"])  # same e-mail, other tenant
        db.session.commit()
        assert db.session.execute(db.select(sa.func.count()).select_from(User)).scalar() == 1
