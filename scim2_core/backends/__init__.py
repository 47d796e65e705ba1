"""Storage backends: the :class:`Backend` protocol and its implementations."""

from ._base import Backend, Change, Page, SearchQuery, SortSpec
from ._memory import MemoryBackend
from ._sql import SQLBackend

__all__ = ["Backend", "Change", "MemoryBackend", "Page", "SQLBackend", "SearchQuery", "SortSpec"]
