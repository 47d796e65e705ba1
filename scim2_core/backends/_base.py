"""The storage protocol every scim2-core backend implements.

The engine owns SCIM semantics (validation, ids, ``meta``, PATCH, projection); a backend owns
storage, and exactly the parts that must be atomic with storage:

* uniqueness of ``uniqueness: server|global`` attributes (RFC 7643 §2.3 / §7), with the
  attribute's ``caseExact`` rule;
* compare-and-set on ``meta.version`` (RFC 7644 §3.14 ``If-Match``), checked in the same
  transaction as the write;
* group membership: refusing a new member (the ``members`` argument of ``create`` and
  ``update``) that no longer exists, removing a deleted resource from every ``members``
  list in the same transaction, and answering "which groups contain this member" for
  ``User.groups``;
* touching members: ``User.groups`` is derived from memberships, so joining or leaving a
  group changes the member's representation and its version must change with it (RFC 7644
  §3.14). In the same transaction/lock as a group write (:meth:`Backend.create`,
  :meth:`Backend.update`, :meth:`Backend.delete`), every member id the write *added or
  removed* that exists and whose resource type has a ``groups`` attribute (by its schema;
  a core Group has none) gets the next ``meta.version`` and ``meta.lastModified`` set to
  the time of the group's write (:func:`~scim2_core.backends.touch`). Only those: a one-member
  add to a 10k-member group touches one resource, a write that keeps the member set
  touches none.

Backends receive the *bound* filter AST (canonical attribute names; see
:func:`scim2_core.filter.bind`), the sort attribute and the paging window, so a database can
push all three down. A backend that cannot translate part of a filter raises
:class:`~scim2_core.InvalidFilterError` (400) rather than silently scanning.

Every method takes ``tenant`` first: ``None`` for a single-tenant deployment, otherwise the
tenant the engine's authentication hook resolved, a non-empty string. Data of one tenant is
invisible to every other tenant, and to ``None``. Every method raises :class:`ValueError`
for an empty tenant name (:func:`~scim2_core.backends.check_tenant`), so that a store
cannot confuse it with ``None``.

Order is part of the contract, so that every backend returns the same lists:
:meth:`Backend.search` returns its window sorted (see its docstring) and
:meth:`Backend.groups_of` lists each member's groups by group id.

The rules every backend applies (compare-and-set, members that must exist, leaving groups,
touching members) are public functions of :mod:`scim2_core.backends`; the contract suite
every backend passes is :mod:`scim2_core.testing`.

Optional capabilities (a backend without them still works; without the first two the
engine keeps its events and audit entries in memory):

* ``enable_outbox() -> scim2_core.events.EventStore``: from this call on, store the
  :class:`~scim2_core.events.ChangeEvent` of every change in the same transaction (or under
  the same lock) as the change: build them with :func:`~scim2_core.backends.change_events`
  from the resource before and after, plus the ``(type, id, new version)`` of every
  resource the write touched (members that joined or left, groups a deleted resource
  left), and store them last, just before the commit. A SQL store can reuse
  :func:`scim2_core.backends.sql.write_events` and
  :data:`~scim2_core.backends.sql.OUTBOX_DDL` on its own connection, and
  :class:`~scim2_core.backends.sql.SQLEventStore`'s queries. Returns the store the
  delivery worker reads (each call may return a new object over the same data).
* ``enable_audit() -> scim2_core.events.AuditStore``: where the engine's audit log is kept,
  beside the data.
* ``request_scope() -> contextlib.AbstractContextManager``: :meth:`Engine.handle
  <scim2_core.Engine.handle>` (and each call of the Python API) enters it around one request,
  in the thread that serves it, so that the request's backend calls (a read, then the
  ``groups_of`` of what it read, or a write) can share what the backend holds, such as one
  database connection. Each call keeps every guarantee it has alone: a write is still one
  transaction with its compare-and-set, and what a call returns is already stored. An
  exception inside the block leaves it (the block must not swallow it); a block entered
  inside another one of the same thread must work (the outer one may serve both). The
  engine looks the method up once; a backend without it costs nothing.

Resources cross this boundary as plain JSON dicts in canonical form (see
:mod:`scim2_core.schema`). A backend must never hand out a dict it keeps a reference to, nor
keep a reference to a dict it was given: callers are free to mutate what they pass and get.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..filter import Filter
from ..schema import AttrRef, ResourceType

__all__ = [
    "Backend",
    "Change",
    "MemberRows",
    "Page",
    "Position",
    "SearchQuery",
    "Seek",
    "SortSpec",
]

#: ``change(current) -> new | None``: given a private copy of the stored resource, return the
#: resource to store, or None to leave it as it is. It may raise a ScimError, in which case
#: nothing is written and the error propagates.
Change = Callable[[dict[str, Any]], "dict[str, Any] | None"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SortSpec:
    """``sortBy``/``sortOrder`` (RFC 7644 §3.4.2.3), resolved to an attribute.

    "Sorting is applied to the attribute's value [...]. If the attribute is multi-valued,
    the "primary" value [or] the first value is used. Resources with no value for the
    attribute sort last in ascending order [...]" — null/missing values sort last in
    ascending order and first in descending order. String comparison follows the
    attribute's ``caseExact``. Ties break by ``id`` ascending so pages are stable.
    """

    path: AttrRef
    descending: bool = False


@dataclass(frozen=True, slots=True)
class Position:
    """Where a resource stands in a search's order: its sort key and its ``id``.

    ``key`` is the value the backend orders by (a JSON scalar: string, number, boolean, or
    None for "no value", which sorts last ascending and first descending); without a
    ``sortBy`` it is ``meta.created``. Only the backend that made a position reads it back.
    """

    key: str | int | float | bool | None
    id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Seek:
    """Keyset paging (RFC 9865 cursors): the window starts right after ``position``
    (``backward``: ends right before it), in the query's order; ``position`` None starts
    at the beginning. Unlike an offset, a position stays right while resources are
    created and deleted between pages: a resource that exists throughout (and keeps its
    sort key) is neither skipped nor repeated, and the page costs the same anywhere in
    the results."""

    position: Position | None = None
    backward: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchQuery:
    """One list/search request, ready to push down.

    ``filter`` is bound (canonical names) or None for "all". ``offset`` is 0-based (the
    engine turns RFC ``startIndex`` into it); ``count`` is the page size (never None: the
    engine caps it). ``count == 0`` asks only for the total.

    ``without_members``: the caller will not return ``members`` (``excludedAttributes=members``,
    what identity providers send on group reads), so a backend may leave them out of the
    resources of the window; one that ignores it is still correct.
    """

    filter: Filter | None = None
    sort: SortSpec | None = None
    offset: int = 0
    count: int = 100
    without_members: bool = False
    #: Keyset paging instead of ``offset`` (which is then 0); only given to a backend whose
    #: ``keyset_paging`` attribute is True (see :class:`Page` for what it answers).
    seek: Seek | None = None


@dataclass(slots=True)
class Page:
    """A search result: the total number of matches and the resources of the window.

    With :attr:`SearchQuery.seek`, the backend also gives the positions of the window's
    ``first`` and ``last`` resources (None when the window is empty) and whether ``more``
    results lie beyond the window in the direction of travel (after it; before it when
    ``backward``). The window itself is always in the query's order.
    """

    total: int
    resources: list[dict[str, Any]] = field(default_factory=list)
    first: Position | None = None
    last: Position | None = None
    more: bool = False
    #: Optional: the derived ``groups`` of the window's resources, as
    #: :meth:`Backend.groups_of` answers them, when the backend read them with the page
    #: (SQLBackend's one-statement lookups); ``None``: the engine asks ``groups_of``.
    groups: Mapping[str, list[dict[str, Any]]] | None = None


@runtime_checkable
class Backend(Protocol):
    """Storage for SCIM resources. Every method is synchronous and thread-safe."""

    #: True if no method ever blocks on I/O, so an ASGI server may call the engine on its
    #: event loop; False makes the ASGI app run the engine in a worker thread.
    never_blocks: bool

    # Optional: ``reads_never_block = True`` says that the read methods (``get``,
    # ``search``, ``groups_of``, ``existing`` and the optional ``get_with_groups``) never
    # wait on a lock, a writer or the network, only on the local disk, although writes may:
    # an ASGI server may then answer reads (GET, HEAD, ``.search``) on its event loop and
    # run only writes in worker threads (``SQLBackend`` on a SQLite file in WAL mode).

    # Optional: ``change_token() -> Hashable | None`` returns a value that is equal between
    # two calls on one thread only if nothing was written to the store in between, by any
    # thread or process (None: cannot tell now). The engine then answers a repeated GET
    # from the answer it kept under the same token (``Options.read_cache_bytes``;
    # ``scim2_core/engine/_answers.py``). ``SQLBackend`` on SQLite has it.

    # Optional: ``keyset_paging = True`` says that :meth:`search` honours
    # :attr:`SearchQuery.seek`; the engine's RFC 9865 cursors are then positions, not
    # offsets. A backend without the attribute gets offsets.

    def bind(self, resource_types: Sequence[ResourceType]) -> None:
        """Learn the resource types to store; called once by the Engine's constructor.

        Create tables and indexes here (idempotently). Raise
        :class:`~scim2_core.ConfigurationError` for a resource type this backend cannot
        store. Called before any other method.
        """
        ...

    def create(
        self,
        tenant: str | None,
        rt: ResourceType,
        resource: dict[str, Any],
        *,
        members: Collection[str] = (),
    ) -> dict[str, Any]:
        """Store a new resource and return it as stored.

        ``resource`` is complete: the engine has assigned ``id`` and ``meta``. Raises
        :class:`~scim2_core.UniquenessError` (409) if a ``uniqueness: server|global``
        attribute value is taken within the tenant (``global``: across tenants too),
        comparing case-insensitively unless the attribute is caseExact.

        ``members``: ids the write adds as group members; each must exist in the tenant at
        the moment of the write, inside the same transaction/lock, else raise
        :class:`~scim2_core.InvalidValueError` (400 ``invalidValue``) naming them and store
        nothing. Ids that ``resource`` does not list as members are not checked. The
        default ``()`` checks nothing. (The engine passes the new members it has just
        checked with :meth:`existing`, so that a delete in between cannot leave a
        dangling member; RFC 7643 §4.2.)

        In the same transaction, touches every member of ``resource`` that exists and whose
        type has ``groups`` (see the module docstring), with ``meta.lastModified`` of
        ``resource``.
        """
        ...

    def get(self, tenant: str | None, rt: ResourceType, id: str) -> dict[str, Any] | None:
        """The stored resource of type ``rt`` with this ``id``, or None."""
        ...

    def search(self, tenant: str | None, rt: ResourceType, query: SearchQuery) -> Page:
        """The resources of type ``rt`` matching ``query.filter``, sorted and windowed.

        Semantics of every filter operator are those of
        :func:`scim2_core.filter.compile_filter`; a backend's results must equal it.
        Without ``query.sort`` the order is still stable (by ``meta.created`` then ``id``).
        Any ``offset`` and ``count`` are accepted, however large: an offset past the end
        gives an empty window, a count past it the rest (RFC 7644 §3.4.2.4).
        Raises :class:`~scim2_core.InvalidFilterError` for a filter it cannot evaluate.
        """
        ...

    def update(
        self,
        tenant: str | None,
        rt: ResourceType,
        id: str,
        change: Change,
        *,
        if_match: Collection[str] | None = None,
        members: Collection[str] = (),
    ) -> dict[str, Any]:
        """Atomically read, change and write one resource; return it as stored after.

        1. Load the resource (:class:`~scim2_core.NotFoundError` if absent).
        2. If ``if_match`` is given and the stored ``meta.version`` is not in it, raise
           :class:`~scim2_core.PreconditionFailedError` (412).
        3. Call ``change`` with a private copy; None means "unchanged": return the stored
           resource untouched. An exception from ``change`` propagates, nothing written.
        4. ``members``: ids the write adds as group members; each must exist in the tenant
           at the moment of the write, inside the same transaction/lock, else raise
           :class:`~scim2_core.InvalidValueError` (400 ``invalidValue``) naming them, and
           write nothing. Only ids that the result lists as members and the stored
           resource did not are checked (a current member exists: :meth:`delete` removes
           it from every group). The default ``()`` checks nothing.
        5. Write the result, enforcing uniqueness as :meth:`create` does, and touch the
           members the result added or removed (those that exist and whose type has
           ``groups``; see the module docstring) with ``meta.lastModified`` of the result.

        Steps 1–5 form one transaction: no concurrent ``update`` or ``delete`` of the same
        resource interleaves (so concurrent PATCHes adding members to one Group all
        survive). A backend should write only what changed (e.g. the membership rows
        added or removed), not rewrite a 10k-member group.
        """
        ...

    def delete(
        self,
        tenant: str | None,
        rt: ResourceType,
        id: str,
        *,
        if_match: Collection[str] | None = None,
    ) -> dict[str, Any]:
        """Delete one resource and return it as it was stored.

        Raises :class:`~scim2_core.NotFoundError` if absent and
        :class:`~scim2_core.PreconditionFailedError` if ``if_match`` is given and the stored
        ``meta.version`` is not in it. In the same transaction, removes ``id`` from the
        ``members`` of every resource that lists it (RFC 7644 §3.6: the deleted resource
        "MUST NOT be returned" in later queries — nor as a member) and bumps those
        resources' ``meta.version`` and ``meta.lastModified`` (:func:`~scim2_core.backends.touch`);
        and touches each member of the deleted resource whose type has ``groups`` (they
        leave it; see the module docstring). The deleted resource itself needs nothing.
        :func:`~scim2_core.backends.remove_member` does it for one group.
        """
        ...

    def groups_of(
        self, tenant: str | None, member_ids: Iterable[str]
    ) -> Mapping[str, list[dict[str, Any]]]:
        """For each id, the resources whose ``members`` contain it (direct membership).

        Returns ``{member_id: [{"value": group_id, "display": displayName}, ...]}``
        (ids with no groups may be absent), each list sorted by group id in code point
        order (Python's ``sorted``), whatever the groups' creation order. Used to derive
        the readOnly ``User.groups`` (RFC 7643 §4.1.2) on every read, so it must be an
        indexed lookup.
        """
        ...

    def existing(self, tenant: str | None, ids: Iterable[str]) -> Mapping[str, str]:
        """Which of ``ids`` exist in this tenant: ``{id: resource type name}``.

        Used to check that new group members exist (400 ``invalidValue`` otherwise); the
        ids it found are then passed as ``members`` to :meth:`create` or :meth:`update`,
        which check them again atomically with the write.
        """
        ...


@runtime_checkable
class MemberRows(Protocol):
    """An optional capability: a backend that stores a group's members apart from the
    group (one row each) implements these two methods, and the engine then never needs a
    whole member list for what identity providers do most to large groups.

    * A read that does not return ``members`` (``excludedAttributes=members``, RFC 7644
      §3.9) calls :meth:`get_without_members`, and a list sets
      :attr:`SearchQuery.without_members`.
    * A PATCH (RFC 7644 §3.5.2) whose every operation adds members, or removes members
      named by id (``members[value eq "id"]``, or a ``members`` value list), calls
      :meth:`update_members` with the ids it names: adding one member to a 100k-member
      group reads and writes one member, whatever the group's size.

    Every other write goes through :meth:`Backend.update` with the whole resource, as
    before; a backend without this capability is used that way for everything.
    """

    def get_without_members(
        self, tenant: str | None, rt: ResourceType, id: str
    ) -> dict[str, Any] | None:
        """:meth:`Backend.get` without the ``members`` attribute (the rest unchanged),
        reading no member."""
        ...

    def update_members(
        self,
        tenant: str | None,
        rt: ResourceType,
        id: str,
        values: Collection[str],
        change: Change,
        *,
        if_match: Collection[str] | None = None,
        members: Collection[str] = (),
    ) -> dict[str, Any]:
        """:meth:`Backend.update`, except that ``change`` sees the resource with only the
        stored members whose ``value`` is in ``values`` (in stored order; ``members``
        absent when none is), and returns the resource *without* ``members``.

        The result of ``change`` says what becomes of those members only: one it no
        longer lists is removed, one whose object differs is replaced in place, one it
        adds (a value not stored) goes after every stored member; every other stored
        member stays as it is. Everything :meth:`Backend.update` guarantees holds: one
        transaction, ``If-Match`` compared with the stored version, new members in
        ``members`` checked to exist, uniqueness, touching the members added or removed.
        With an outbox on (``enable_outbox``), the write stores its events like an
        update's, from the members named alone: :func:`~scim2_core.backends.change_events`
        with ``some_members=True`` and one ``touched`` event per member added or removed.
        """
        ...
