"""What every handler of one engine reads: built once in ``Engine.__init__``, then frozen."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .._options import Options
from ..backends import Backend
from ..schema import ResourceType, Schema
from ._audit import Audit
from ._cursor import CursorCodec
from ._events import Events
from ._render import Renderer

__all__ = ["EngineState"]


@dataclass(frozen=True, slots=True)
class EngineState:
    """The configuration of one engine, shared by the query, write and discovery handlers.

    Frozen: nothing here changes after construction (the projection cache inside
    ``renderer`` and the listener list inside ``events`` are their own business).
    """

    backend: Backend
    options: Options
    types: tuple[ResourceType, ...]
    #: Lower-cased endpoint without its slash (``"users"``) -> resource type.
    by_endpoint: Mapping[str, ResourceType]
    by_name: Mapping[str, ResourceType]
    schemas: tuple[Schema, ...]
    schemas_by_lower: Mapping[str, Schema]
    cursors: CursorCodec
    renderer: Renderer
    events: Events
    audit: Audit
