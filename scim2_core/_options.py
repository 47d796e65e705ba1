"""Engine configuration: one frozen object, validated on construction."""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import ConfigurationError

__all__ = ["Options"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """Everything about the engine's behaviour that a deployment may choose.

    ``strict`` turns off every tolerance for known identity-provider deviations (listed in
    docs/idp-notes.md) and rejects unknown attributes in POST/PUT bodies with 400
    ``invalidSyntax`` instead of dropping them.
    """

    #: RFC strict mode: no IdP tolerances, unknown attributes rejected.
    strict: bool = False
    #: Reject unknown attributes in POST/PUT bodies even when not otherwise strict.
    reject_unknown_attributes: bool = False
    #: ServiceProviderConfig ``filter.maxResults``; larger ``count`` values are capped.
    max_results: int = 1000
    #: Largest request body accepted, in bytes (413 above it). Adapters enforce it too.
    max_body_bytes: int = 1_048_576
    #: ServiceProviderConfig ``bulk.maxOperations`` / ``bulk.maxPayloadSize``.
    bulk_max_operations: int = 1000
    bulk_max_payload_bytes: int = 1_048_576
    #: Filter limits: longer or deeper filters get 400 ``invalidFilter``. The depth is that of
    #: the parsed tree (docs/filters.md). 16 keeps a margin below 24, where SQLite's SQL
    #: parser overflows on the deepest filters through SQLBackend; PostgreSQL and
    #: MemoryBackend run far deeper ones.
    max_filter_length: int = 4096
    max_filter_depth: int = 16
    #: Answer a successful PATCH with 204 and no body instead of 200 and the resource.
    patch_returns_no_content: bool = False
    #: PATCH ``replace`` with a value filter matching nothing on a multi-valued complex
    #: attribute adds the value (what Entra ID intends) instead of 400 ``noTarget``.
    patch_replace_creates_missing: bool = True
    #: Secret for signing RFC 9865 cursors; random per process when None.
    cursor_secret: bytes | None = None
    #: Seconds a cursor stays valid.
    cursor_ttl_seconds: int = 3600
    #: Discovery endpoints (/ServiceProviderConfig, /ResourceTypes, /Schemas) need auth.
    discovery_requires_auth: bool = False
    #: ``documentationUri`` in ServiceProviderConfig.
    documentation_uri: str | None = None
    #: How many bytes of answers to repeated reads the engine keeps while the store has
    #: not changed, when the backend can tell (``SQLBackend`` on SQLite; see
    #: docs/backends.md); 0 keeps none.
    read_cache_bytes: int = 2_097_152

    def __post_init__(self) -> None:
        for name in (
            "max_results",
            "max_body_bytes",
            "bulk_max_operations",
            "bulk_max_payload_bytes",
            "max_filter_length",
            "max_filter_depth",
            "cursor_ttl_seconds",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigurationError(
                    f"Options.{name} must be a positive integer, got {value!r}"
                )
        size = self.read_cache_bytes
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ConfigurationError(
                f"Options.read_cache_bytes must be a non-negative integer, got {size!r}"
            )
