"""Event hooks: precommit may veto, postcommit failures are isolated, validate merges answers."""

from __future__ import annotations

import contextlib
import logging

import pytest
import sqlalchemy as sa

from clientela.core import hookimpl, services
from clientela.core.db import db
from clientela.core.errors import ValidationError
from clientela.core.models import Customer


@contextlib.contextmanager
def plugged(app, obj, name):
    pm = app.extensions["clientela"].plugins.pm
    pm.register(obj, name=name)
    try:
        yield obj
    finally:
        pm.unregister(name=name)


class Vetoer:
    @hookimpl
    def clientela_customer_created_precommit(self, entity):
        if entity.display_name == "Forbidden":
            raise ValidationError({"display_name": ["this name is not allowed"]})


class Recorder:
    def __init__(self):
        self.seen = []

    @hookimpl
    def clientela_entity_changed_postcommit(self, change):
        self.seen.append((change.entity_type, change.operation, change.values.get("display_name")))

    @hookimpl
    def clientela_customer_created_postcommit(self, entity, change):
        assert entity is None
        self.seen.append(("created", change.values["display_name"]))


class Crasher:
    @hookimpl
    def clientela_entity_changed_postcommit(self, change):
        raise RuntimeError("plugin bug")


class Validator:
    @hookimpl
    def clientela_validate(self, entity):
        if isinstance(entity, Customer) and "vip" in entity.tags and not entity.email:
            return {"email": ["a VIP needs an e-mail address"]}
        return None


def count_customers():
    return db.session.execute(sa.select(sa.func.count()).select_from(Customer)).scalar()


def test_precommit_hook_vetoes_the_whole_transaction(app, tenant):
    with plugged(app, Vetoer(), "vetoer"):
        services.create_customer({"first_name": "Allowed"})
        services.create_customer({"display_name": "Forbidden"})
        with pytest.raises(ValidationError) as err:
            db.session.commit()
        assert err.value.errors == {"display_name": ["this name is not allowed"]}
        db.session.rollback()
    assert count_customers() == 0


def test_postcommit_failure_is_logged_and_other_plugins_still_run(app, tenant, caplog):
    recorder = Recorder()
    with plugged(app, Crasher(), "crasher"), plugged(app, recorder, "recorder"):
        with caplog.at_level(logging.ERROR):
            services.create_customer({"first_name": "Grace"})
            db.session.commit()
    assert ("customers", "insert", "Grace") in recorder.seen
    assert ("created", "Grace") in recorder.seen
    assert "plugin 'crasher' failed in clientela_entity_changed_postcommit" in caplog.text
    assert count_customers() == 1


def test_validate_answers_refuse_the_write_with_per_field_messages(app, tenant):
    with plugged(app, Validator(), "validator"):
        services.create_customer({"first_name": "Vic", "tags": ["vip"]})
        with pytest.raises(ValidationError) as err:
            db.session.commit()
        assert err.value.errors == {"email": ["a VIP needs an e-mail address"]}
        db.session.rollback()
        services.create_customer({"first_name": "Vic", "tags": ["vip"], "email": "v@example.com"})
        db.session.commit()
    assert count_customers() == 1


def test_rolled_back_changes_fire_no_postcommit(app, tenant):
    recorder = Recorder()
    with plugged(app, recorder, "recorder"):
        services.create_customer({"first_name": "Ghost"})
        db.session.rollback()
        services.create_customer({"first_name": "Real"})
        db.session.commit()
    names = [s[-1] for s in recorder.seen]
    assert "Ghost" not in names and "Real" in names


def test_customer_input_is_validated_per_field(tenant):
    with pytest.raises(ValidationError) as err:
        services.create_customer({"first_name": "X", "email": "nope", "phone": "12",
                                  "stage": "vip", "colour": "red"})
    assert set(err.value.errors) == {"colour"}
    with pytest.raises(ValidationError) as err:
        services.create_customer({"first_name": "X", "email": "nope", "phone": "12",
                                  "stage": "vip"})
    assert set(err.value.errors) == {"email", "phone", "stage"}


class FollowUp:
    """Writes an interaction whenever a customer is created, inside the transaction."""

    def __init__(self):
        self.precommit, self.postcommit = [], []

    @hookimpl
    def clientela_customer_created_precommit(self, entity):
        services.record_interaction(entity.id, "note", subject="welcome")

    @hookimpl
    def clientela_entity_changed_precommit(self, change):
        self.precommit.append((change.entity_type, change.values.get("subject")))

    @hookimpl
    def clientela_entity_changed_postcommit(self, change):
        self.postcommit.append((change.entity_type, change.values.get("subject")))


class Forever:
    """A precommit hook that writes a row for every row: it must not loop for ever."""

    @hookimpl
    def clientela_interaction_recorded_precommit(self, entity):
        services.record_interaction(entity.customer_id, "note", subject="again")


def test_rows_written_by_precommit_hooks_get_hooks_and_values_too(app, tenant):
    with plugged(app, FollowUp(), "follow-up") as plugin:
        services.create_customer({"first_name": "Ada"})
        db.session.commit()
    assert ("interactions", "welcome") in plugin.precommit
    assert ("interactions", "welcome") in plugin.postcommit


def test_precommit_hooks_that_keep_writing_are_refused(app, tenant):
    customer = services.create_customer({"first_name": "Bo"})
    db.session.commit()
    with plugged(app, Forever(), "forever"):
        services.record_interaction(customer.id, "note", subject="first")
        with pytest.raises(ValidationError, match="kept writing"):
            db.session.commit()
    db.session.rollback()
