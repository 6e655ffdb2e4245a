"""Every hook of Clientela, with the docstring that is its reference for plugin authors.

Hooks come in three families:

* **contribution** hooks, called once at start-up, receive a ``register`` callback
  so the core can check each registration and name the plugin in its error;
* **event** hooks, in two halves: ``*_precommit`` runs inside the transaction and may
  veto the write by raising ``clientela.core.errors.ValidationError``;
  ``*_postcommit`` runs after the commit, and a failing plugin is logged while the
  others still run;
* **question** hooks, which the core asks every plugin and whose answers it merges.

``docs/hooks.md`` is generated from this module (``clientela docs hooks``).
"""

from __future__ import annotations

from typing import Any, Callable

from clientela.core import hookspec

# ---------------------------------------------------------------------------
# contribution hooks
# ---------------------------------------------------------------------------


@hookspec
def clientela_models(register: Callable[[type], None]) -> None:
    """Register the plugin's ``Entity`` subclasses.

    :param register: call ``register(Model)`` once per model class. The core checks
        that the class derives from ``clientela.core.models.Entity`` (or is a shared
        table the plugin owns) and that its primary and foreign keys lead with
        ``tenant_id``; a failing check stops start-up naming the plugin.
    :returns: nothing.

    Since hook API 1.0.
    """


@hookspec
def clientela_api_blueprints(register: Callable[..., None]) -> None:
    """Register the plugin's API blueprints.

    :param register: call ``register(blueprint, url_prefix=None)`` with a
        ``flask_smorest.Blueprint`` (or a plain ``flask.Blueprint``). Routes live under
        ``/api/v1/``; the blueprint's own ``url_prefix`` is appended to it.
    :returns: nothing.

    Since hook API 1.0.
    """


@hookspec
def clientela_cli_commands(register: Callable[[Any], None]) -> None:
    """Register click commands or groups under the ``clientela`` command.

    :param register: call ``register(command)`` with a ``click.Command`` or
        ``click.Group``. A name already taken stops start-up naming both plugins.
    :returns: nothing.

    Since hook API 1.0.
    """


@hookspec
def clientela_permissions(register: Callable[..., None]) -> None:
    """Declare the permissions the plugin checks.

    :param register: call ``register(name, description)`` for each permission;
        names are ``"<resource>:<action>"`` such as ``"deals:write"``.
    :returns: nothing.

    Since hook API 1.0.
    """


@hookspec
def clientela_roles(register: Callable[..., None]) -> None:
    """Add permissions to roles (built-in or new).

    :param register: call ``register(role, permissions)`` with a role name (e.g.
        ``"sales"``) and an iterable of ``(permission, scope)`` pairs or plain
        permission names (scope ``"all"``). Scopes are ``own``, ``team`` and ``all``.
    :returns: nothing.

    Since hook API 1.0.
    """


@hookspec
def clientela_config_defaults(register: Callable[..., None]) -> None:
    """Declare configuration keys with their default values.

    :param register: call ``register(key, default, description)``. Keys are upper
        case and start with the plugin's name, e.g. ``"OPERATIONAL_LEAD_SCORE_MAX"``.
        A value from the configuration file or a ``CLIENTELA_<KEY>`` environment
        variable overrides the default.
    :returns: nothing.

    Since hook API 1.0.
    """


@hookspec
def clientela_jobs(register: Callable[..., None]) -> None:
    """Register background tasks and periodic schedules.

    :param register: call ``register(function, name=None, retries=0, schedule=None)``;
        ``schedule`` is a cron-like mapping for periodic jobs. Every job runs inside
        the tenant context it was enqueued for.
    :returns: nothing.

    Since hook API 1.0.
    """


@hookspec
def clientela_demo_data(tenant: Any) -> None:
    """Load the plugin's demo data into ``tenant`` (what ``clientela demo`` loads).

    Called inside the tenant's context, after the core's own demo customers exist,
    in plugin order (a plugin runs after those it requires). Use the plugin's
    ``services`` functions; the caller commits.

    :param tenant: the ``Tenant`` row.
    :returns: nothing.

    Since hook API 1.0.
    """


# ---------------------------------------------------------------------------
# event hooks
# ---------------------------------------------------------------------------


@hookspec
def clientela_entity_changed_precommit(change: Any) -> None:
    """Any entity (core or plugin) was inserted, updated or deleted; still in the transaction.

    :param change: a ``clientela.core.events.EntityChange`` with ``entity``,
        ``entity_type`` (table name), ``entity_id``, ``tenant_id``, ``operation``
        (``insert``/``update``/``delete``), ``changes`` (``{field: [before, after]}``)
        and ``values``.
    :raises ValidationError: to veto the whole transaction.
    :returns: nothing.

    Since hook API 1.0.
    """


@hookspec
def clientela_entity_changed_postcommit(change: Any) -> None:
    """Any entity was inserted, updated or deleted, and the transaction committed.

    :param change: as for the precommit half, except that ``change.entity`` is
        ``None`` (the session cannot load anything at this point): read
        ``change.values``. Enqueue a job for any further write.
    :returns: nothing. An exception is logged; other plugins still run.

    Since hook API 1.0.
    """


@hookspec
def clientela_customer_created_precommit(entity: Any, change: Any) -> None:
    """A customer is being created (inside the transaction).

    :param entity: the new ``Customer``.
    :param change: the ``EntityChange``.
    :raises ValidationError: to veto the creation.

    Since hook API 1.0.
    """


@hookspec
def clientela_customer_created_postcommit(entity: Any, change: Any) -> None:
    """A customer was created and committed.

    :param entity: always ``None`` here; read ``change.values``.
    :param change: the ``EntityChange``.

    Since hook API 1.0.
    """


@hookspec
def clientela_customer_updated_precommit(entity: Any, change: Any) -> None:
    """A customer is being updated (inside the transaction).

    :param entity: the ``Customer``.
    :param change: the ``EntityChange``; ``change.changes`` holds before/after.
    :raises ValidationError: to veto the update.

    Since hook API 1.0.
    """


@hookspec
def clientela_customer_updated_postcommit(entity: Any, change: Any) -> None:
    """A customer update was committed.

    :param entity: always ``None`` here; read ``change.values``.
    :param change: the ``EntityChange``.

    Since hook API 1.0.
    """


@hookspec
def clientela_customer_merged_precommit(survivor: Any, merged_id: Any) -> None:
    """Two customers are being merged into ``survivor``; move your records now.

    Every plugin that keeps records pointing at a customer must re-point the rows of
    ``merged_id`` to ``survivor.id`` here, in the same transaction, so that nothing
    is lost by a merge.

    :param survivor: the ``Customer`` that remains.
    :param merged_id: the id of the customer that is merged away.

    Since hook API 1.0.
    """


@hookspec
def clientela_customer_merged_postcommit(survivor_id: Any, merged_id: Any) -> None:
    """A merge was committed.

    :param survivor_id: id of the remaining customer.
    :param merged_id: id of the customer merged into it.

    Since hook API 1.0.
    """


@hookspec
def clientela_customer_erased_postcommit(customer_id: Any) -> None:
    """A customer's personal data was erased (right to erasure) and committed.

    :param customer_id: the id of the anonymised customer.

    Since hook API 1.0.
    """


@hookspec
def clientela_interaction_recorded_precommit(entity: Any, change: Any) -> None:
    """An interaction is being recorded (inside the transaction).

    :param entity: the new ``Interaction``.
    :param change: the ``EntityChange``.
    :raises ValidationError: to veto it.

    Since hook API 1.0.
    """


@hookspec
def clientela_interaction_recorded_postcommit(entity: Any, change: Any) -> None:
    """An interaction was recorded and committed.

    :param entity: always ``None`` here; read ``change.values``.
    :param change: the ``EntityChange``.

    Since hook API 1.0.
    """


@hookspec
def clientela_tenant_created_precommit(tenant: Any) -> None:
    """A tenant is being provisioned; create the plugin's per-tenant defaults now.

    Called inside the tenant's context and transaction.

    :param tenant: the new ``Tenant``.
    :raises ValidationError: to veto the creation.

    Since hook API 1.0.
    """


@hookspec
def clientela_tenant_created_postcommit(tenant_id: Any) -> None:
    """A tenant was provisioned and committed.

    :param tenant_id: the new tenant's id.

    Since hook API 1.0.
    """


# ---------------------------------------------------------------------------
# question hooks
# ---------------------------------------------------------------------------


@hookspec
def clientela_validate(entity: Any, change: Any) -> dict[str, list[str]] | None:
    """Validate an entity about to be inserted or updated.

    Called before commit for every inserted or updated entity, of every type.

    :param entity: the entity.
    :param change: the ``EntityChange``.
    :returns: ``None`` when valid, else ``{field: [message, ...]}``; the answers of
        all plugins are merged and the transaction is refused with a 422-style
        ``ValidationError`` carrying all of them.

    Since hook API 1.0.
    """


@hookspec
def clientela_customer_profile(customer: Any) -> dict | None:
    """Contribute a section to the customer's 360° view.

    :param customer: the ``Customer``.
    :returns: ``{"key": ..., "title": ..., "data": {...}}`` or ``None``.

    Since hook API 1.0.
    """


@hookspec
def clientela_customer_export(customer: Any) -> dict | None:
    """Everything the plugin holds about a customer (data-subject access request).

    :param customer: the ``Customer``.
    :returns: a JSON-serialisable ``{"<plugin section>": ...}`` or ``None``.

    Since hook API 1.0.
    """


@hookspec
def clientela_customer_erase(customer: Any) -> dict | None:
    """Anonymise the personal data the plugin holds about a customer (in the transaction).

    Keep non-personal aggregates (amounts, dates) for reporting.

    :param customer: the ``Customer``.
    :returns: a summary such as ``{"rows_anonymised": 3}`` or ``None``.

    Since hook API 1.0.
    """


@hookspec
def clientela_search(query: str, limit: int) -> list[dict] | None:
    """Answer a global search.

    :param query: what the user typed.
    :param limit: the most results wanted from this plugin.
    :returns: ``[{"type", "id", "title", "score"}]`` or ``None``.

    Since hook API 1.0.
    """
