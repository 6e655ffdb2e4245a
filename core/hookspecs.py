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
def clientela_web_blueprints(register: Callable[..., None]) -> None:
    """Register Flask blueprints served outside the API: public pages and endpoints.

    For what is not part of the authenticated REST API, e.g. a public web-to-lead form at
    ``/forms/<key>`` or the web UI's pages. These routes get no authentication from the
    core: a public endpoint must find its tenant from something that belongs to one
    tenant (a form key), never from a field the caller chooses.

    :param register: call ``register(blueprint, url_prefix=None)`` with a
        ``flask.Blueprint``; ``url_prefix`` is taken from the site's root.
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
def clientela_jobs(register: Callable[..., Any]) -> None:
    """Register background jobs and periodic schedules.

    :param register: call ``register(function, name=None, retries=0, retry_delay=10,
        backoff=2, schedule=None)`` once per job. ``name`` defaults to
        ``"<plugin>.<function name>"``; a name already taken stops start-up naming both
        plugins. A job that raises is tried again ``retries`` times, waiting
        ``retry_delay * backoff ** (attempt - 1)`` seconds, then is ``dead`` (the
        dead-letter list of ``clientela jobs list --status dead``). ``schedule`` makes
        it periodic: a cron-like mapping in UTC such as ``{"minute": "0", "hour":
        "3"}`` (fields ``minute``, ``hour``, ``day``, ``month``, ``day_of_week``) or an
        interval in seconds (or a ``timedelta``); it is then enqueued, without
        arguments, once per period in every active tenant.
    :returns: nothing.

    Send a job from service code with ``clientela.core.jobs.enqueue(name, *args,
    idempotency_key=None, delay=None, **kwargs)``: it joins the current transaction and
    is sent when that commits. The function runs later in a consumer, inside the app
    context and the tenant context it was enqueued in (origin ``job``, the same user as
    actor), and may run more than once (after a crash); keep its writes in the
    transaction it is given, which commits together with the job's success.

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
def clientela_customers_imported_precommit(created_ids: list, updated_ids: list,
                                           summary: dict) -> None:
    """A bulk import of customers is about to commit (inside its one transaction).

    Imports write in batches that skip the ORM, so they fire neither the per-customer
    ``clientela_customer_created_*``/``clientela_customer_updated_*`` hooks nor
    ``clientela_entity_changed_*``: they fire this pair once per import instead (and
    ``clientela_validate`` still runs for each row, on a transient ``Customer``).
    Not called for a dry run or an import refused in all-or-nothing mode.

    :param created_ids: ids of the customers the import created, in file order.
    :param updated_ids: ids of the existing customers it updated.
    :param summary: the counts and options also written to the import's audit event:
        ``{"file", "format", "rows", "created", "updated", "unchanged", "failed",
        "match", "mode"}``.
    :raises ValidationError: to veto the whole import (nothing is written).
    :returns: nothing.

    Since hook API 1.0.
    """


@hookspec
def clientela_customers_imported_postcommit(created_ids: list, updated_ids: list,
                                            summary: dict) -> None:
    """A bulk import of customers was committed.

    Read the customers by id (in chunks: an import can hold a million rows) from a job
    rather than here when the work is long.

    :param created_ids: ids of the customers created, in file order.
    :param updated_ids: ids of the existing customers updated.
    :param summary: as for the precommit half.
    :returns: nothing. An exception is logged; other plugins still run.

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

    :param entity: the entity. A bulk import passes a transient one, never added to a
        session, whose attributes are set without SQLAlchemy's history: read what changed
        from ``change``, not from the object's history.
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
    :returns: ``{"key": ..., "title": ..., "data": {...}}``, a list of such sections (since
        hook API 1.1: a plugin with several kinds of records gives one section each), or
        ``None``.

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

    Called before the core anonymises the customer, so ``customer.email`` and
    ``customer.phone`` can still find records that are not linked by id (an unconverted
    lead, say). Keep non-personal aggregates (amounts, dates) for reporting.

    :param customer: the ``Customer``.
    :returns: a summary such as ``{"rows_anonymised": 3}`` or ``None``.

    Since hook API 1.0.
    """


@hookspec
def clientela_team_members(user_id: Any) -> list | None:
    """The ids of the users in the same team(s) as ``user_id``, for the ``team`` record scope.

    :param user_id: the user whose team mates are wanted.
    :returns: an iterable of user ids (the answers of all plugins are merged; the user
        is always included), or ``None``. Without any answer, ``team`` scope reaches only
        the user's own records.

    Since hook API 1.0.
    """


@hookspec
def clientela_search(query: str, limit: int, principal: Any) -> list[dict] | None:
    """Answer a global search (``GET /api/v1/search?q=``).

    :param query: what the user typed (at least two characters).
    :param limit: the most results wanted from this plugin.
    :param principal: who searches (``clientela.core.access.Principal``; since hook API
        1.1): answer only records they may read, in their record scope — use the same
        query as the plugin's list endpoint. Answer nothing for a permission they lack.
    :returns: ``[{"type", "id", "title", "subtitle" (optional), "score"}]`` with
        ``score`` between 0 and 1 (1: exact), or ``None``.

    Since hook API 1.0.
    """


@hookspec
def clientela_attribute_types(entity_type: str) -> dict[str, str] | None:
    """The types of the custom attributes of an entity type, for filtering and sorting.

    List endpoints filter and sort on keys of the entities' ``attributes`` JSON
    (``GET /api/v1/customers?attr.vat_number=IT123&sort=-attr.score``). A key no plugin
    types is compared as text; a typed key is compared as its type (``attr.score.gte=10``
    is a numeric comparison, ``sort=attr.signed_on`` sorts dates, a ``list`` filter
    matches an element of the list).

    :param entity_type: the table name of the entity, e.g. ``"customers"``.
    :returns: ``{key: type}`` with ``type`` one of ``text``, ``integer``, ``decimal``,
        ``boolean``, ``date``, ``datetime``, ``list``; or ``None``. The answers of all
        plugins are merged; should two plugins type one key, the first answer pluggy
        returns (that of the plugin registered last) wins.

    Since hook API 1.0.
    """


@hookspec
def clientela_warehouse_facts(register: Callable[..., None]) -> None:
    """Offer a model to the analytical plugin's customer data warehouse as a fact table.

    Asked by the analytical plugin whenever it opens a tenant's warehouse. The model is
    then loaded into the DuckDB table ``fact_<name>`` incrementally (rows whose
    ``updated_at`` passed the last refresh), its deleted rows are removed (from the audit
    trail), and its rows follow a customer merge to the survivor.

    :param register: call ``register(name, model, columns, time_column,
        customer_column="customer_id")``: ``name`` a free identifier (``"deal"`` gives
        ``fact_deal``), ``model`` an ``Entity`` subclass, ``columns`` the attribute names
        to copy (ids, strings, numbers, dates, booleans; JSON is kept as text),
        ``time_column`` the column that dates the fact (it gives the ``date_key`` into
        ``dim_date``), ``customer_column`` the column referencing the customer. The
        table has ``<name>_id``, ``customer_id``, ``date_key``, the time column, the
        columns and ``updated_at``.
    :returns: nothing.

    Since hook API 1.0.
    """


# ---------------------------------------------------------------------------
# channels, contact and audiences (hook API 1.1)
# ---------------------------------------------------------------------------


@hookspec
def clientela_channels(register: Callable[..., None]) -> None:
    """Add communication channels to the channel registry (contribution hook).

    The registry (``clientela.core.channels``) knows every channel an interaction can
    come through or go out on. The core registers none; the collaborative plugin
    registers the built-in ones (in person, phone, e-mail, letter, fax, web form,
    portal, chat/SMS) and other plugins may add theirs.

    :param register: call ``register(key, label, fields=None, outbound=False)``:
        ``key`` the value stored in ``Interaction.channel`` (``"email"``, ``"letter"``),
        ``label`` a human name, ``fields`` a mapping ``{attribute: type}`` of the extra
        attributes an interaction on this channel records (``{"duration_seconds":
        "integer", "number": "phone"}``; types as for ``clientela_attribute_types``),
        ``outbound`` whether messages can be sent on it (see
        ``clientela_send_message``). A key registered twice stops start-up naming both
        plugins.
    :returns: nothing.

    Since hook API 1.1.
    """


@hookspec
def clientela_contact_allowed(customer: Any, channel: str, purpose: str) -> bool | None:
    """May this customer be contacted on this channel for this purpose? (question hook)

    Asked before any outbound contact a plugin makes on its own initiative (a campaign,
    an automation's e-mail). Ask through ``clientela.core.channels.contact_allowed``.

    :param customer: the ``Customer``.
    :param channel: a channel key (``"email"``, ``"phone"``, ``"letter"``, ...).
    :param purpose: ``"marketing"`` or ``"service"`` (plugins may use others).
    :returns: ``False`` to forbid (any ``False`` wins), ``True`` to allow, ``None`` for
        no opinion. With no opinion at all, ``marketing`` is forbidden (no recorded
        consent, no marketing) and every other purpose is allowed.

    Since hook API 1.1.
    """


@hookspec(firstresult=True)
def clientela_send_message(message: dict) -> dict | None:
    """Send an outbound message on a channel (question hook; the first answer wins).

    Ask through ``clientela.core.channels.send_message``, which checks
    ``clientela_contact_allowed`` first. A plugin that owns the channel (the
    collaborative plugin owns ``email``: per-tenant SMTP, templates, threading) sends
    it, records the outbound interaction and answers; with no answer for ``email``, the
    core sends through the application's mail driver (``clientela.core.mail``) and
    records the interaction itself.

    :param message: ``{"channel", "customer_id", "to", "subject", "body",
        "purpose", "html" (optional), "headers" (optional dict), "source" (optional,
        e.g. ``"campaign"``), "external_id" (optional, idempotency), "attributes"
        (optional dict stored on the interaction)}``.
    :returns: ``{"status": "sent"|"queued"|"failed", "interaction_id", "message_id",
        "error"}``, or ``None`` when the plugin does not handle the channel.

    Since hook API 1.1.
    """


@hookspec
def clientela_segments() -> list[dict] | None:
    """The customer segments (audiences) a plugin offers to others (question hook).

    Campaigns and automations target segments without knowing which plugin defines
    them; the analytical plugin offers its saved segments (RFM, CLV, rules).

    :returns: ``[{"id": str, "name": str, "size": int | None, "source": str}]`` or
        ``None``. ``id`` must be unique across plugins (prefix it, e.g.
        ``"analytical:<uuid>"``).

    Since hook API 1.1.
    """


@hookspec(firstresult=True)
def clientela_segment_members(segment_id: str) -> list | None:
    """The customer ids in a segment (question hook; first answer wins).

    A plugin answers its current list: evaluated now, or as it last materialised it (the
    analytical plugin stores each segment's members and refreshes them by a job).

    :param segment_id: an ``id`` from ``clientela_segments``.
    :returns: a list of customer ids (``uuid.UUID``) of the current tenant, or ``None``
        when the segment is not this plugin's.

    Since hook API 1.1.
    """


@hookspec
def clientela_automation_actions(register: Callable[..., None]) -> None:
    """Offer actions to automation rules (contribution hook).

    The tailor-made plugin's automation rules run actions; the core and that plugin
    supply generic ones (set a field, add a tag, send a webhook) and other plugins add
    theirs (the operational plugin's ``create_task``).

    :param register: call ``register(key, label, function, params=None)``: ``function``
        is called as ``function(entity, params)`` inside the tenant context and the
        transaction of the rule's job, ``entity`` being the record that triggered the
        rule (or ``None`` for date triggers without a record); ``params`` is the
        action's configuration, described by ``params``, a mapping ``{name: type}``.
        It returns a short JSON-serialisable result for the rule's execution log.
    :returns: nothing.

    Since hook API 1.1.
    """


@hookspec
def clientela_inbound_message(interaction: Any, thread: list) -> dict | None:
    """An inbound message that needs an answer was recorded (question hook).

    Asked by the collaborative plugin, in the transaction, for every inbound message on
    any channel matched to a customer. The operational plugin answers by opening a
    service case, or by adding the message to the open case of its thread.

    :param interaction: the inbound ``Interaction``.
    :param thread: the earlier interactions of the same conversation, oldest first.
    :returns: ``{"type": "case", "id": ..., "created": bool}`` when the plugin linked
        the message to one of its records, or ``None``.

    Since hook API 1.1.
    """


@hookspec
def clientela_portal_records(customer_id: Any) -> dict | None:
    """What a customer may see of a plugin's records about them in the self-service portal.

    Asked by the collaborative plugin's portal (``GET /portal/api/v1/records``) inside the
    customer's tenant, for the customer the portal account belongs to. The operational
    plugin answers with the customer's service cases.

    :param customer_id: the portal customer's id; answer only records of this customer.
    :returns: ``{kind: [record, ...]}``, each record a JSON-serialisable dict holding only
        what is meant for the customer (no internal notes, owners or scores), or ``None``.

    Since hook API 1.1.
    """


@hookspec
def clientela_unknown_sender(channel: str, address: str, name: str, subject: str,
                             body: str) -> dict | None:
    """A message came from someone no customer matches (question hook, in the transaction).

    Asked by the collaborative plugin when its ``COLLABORATIVE_UNKNOWN_SENDERS`` setting is
    ``lead``. The operational plugin answers by capturing a lead (or finding the open lead
    of that address), so that sales can qualify the sender; the message itself stays
    unmatched until a customer exists.

    :param channel: the channel key (``"email"``).
    :param address: the sender's address (lower-cased e-mail, or an E.164 number).
    :param name: the sender's display name, possibly empty.
    :param subject: the message's subject, possibly empty.
    :param body: the message's text.
    :returns: ``{"type": "lead", "id": ..., "created": bool}`` or ``None``.

    Since hook API 1.1.
    """


# --- the staff web UI ------------------------------------------------------------------


@hookspec
def clientela_web_nav(principal) -> list[dict] | None:
    """Navigation entries of the staff web UI (question hook, per page view).

    Add the plugin's pages to the top navigation, or to the settings menu. The core drops
    entries whose ``permission`` the user lacks and entries whose endpoint does not exist,
    so a page is never offered to someone it would refuse.

    :param principal: the logged-in user (``principal.can("deals:read")``).
    :returns: a list of ``{"label": str, "endpoint": str, "order": int, "section":
        "main" | "settings", "permission": str}`` (``order`` default 50, ``section``
        default ``"main"``, ``permission`` optional; ``label`` translated, e.g. with
        ``clientela.core.web.i18n.lazy_gettext``), or ``None``. The core's own entries have
        order 0 (dashboard), 10 (customers) and 90 (settings: plugins).

    Since hook API 1.2.
    """


@hookspec
def clientela_web_dashboard_widgets(principal) -> list[dict] | None:
    """Widgets of the staff dashboard (question hook, per dashboard view).

    Answer only with what the user may see (check ``principal.can(...)`` and use the
    same scoped queries as the API). Charts are best drawn with
    ``clientela.core.web.charts`` (server-rendered SVG, allowed by the CSP).

    :param principal: the logged-in user.
    :returns: a list of ``{"key": str, "title": str, "order": int, "html": Markup}`` (the
        HTML rendered by the plugin, e.g. with ``flask.render_template``), or ``None``.

    Since hook API 1.2.
    """


@hookspec
def clientela_web_customer_panels(customer_id, principal) -> list[dict] | None:
    """Panels of the customer 360° page (question hook, per page view).

    The page itself has checked that the user may read the customer. A plugin answers
    with its section about this customer (deals, cases, segments, …), limited to the
    records the user may read.

    :param customer_id: the customer's id (``uuid.UUID``).
    :param principal: the logged-in user.
    :returns: a list of ``{"key": str, "title": str, "order": int, "html": Markup}``, or
        ``None``.

    Since hook API 1.2.
    """
