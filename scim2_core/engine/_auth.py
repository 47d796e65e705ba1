"""Authentication hooks: who sent a request, as the engine's ``authenticate`` hook sees it.

``Engine(backend, authenticate=hook)`` calls ``hook(request)`` once per request; a
:class:`Principal` (or any non-``None`` value) lets the request through, ``None`` is
answered 401 with ``WWW-Authenticate: Bearer``.

RFC 7644 §2 (https://www.rfc-editor.org/rfc/rfc7644#section-2):

    The SCIM protocol does not define a scheme for authentication and authorization;
    therefore, implementers are free to choose mechanisms appropriate to their use cases.
    [...] the use of OAuth 2.0 [...] bearer tokens [RFC6750] is RECOMMENDED.

RFC 6750 §2.1 (https://www.rfc-editor.org/rfc/rfc6750#section-2.1):

    b64token    = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    credentials = "Bearer" 1*SP b64token
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .._errors import ConfigurationError
from .._types import Request
from ._request import LowerCaseHeaders

__all__ = ["Principal", "bearer_tokens"]

#: How many valid ``Authorization`` headers a :func:`bearer_tokens` hook remembers (the
#: same token written with other spaces or scheme case is another header).
_REMEMBERED = 64


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated client: a display ``name`` and the ``tenant`` it acts for.

    ``tenant`` is ``None`` for a single-tenant deployment; the engine hands it to every
    backend call.
    """

    name: str
    tenant: str | None = None

    def __post_init__(self) -> None:
        # None is the single-tenant deployment; an empty name would be no tenant at all.
        if self.tenant == "":
            raise ConfigurationError("a tenant name must not be empty (use None for no tenant)")


def _authorization(request: Request) -> str | None:
    """The ``Authorization`` header of ``request`` (header names are case-insensitive)."""
    headers = request.get("headers") or {}
    if type(headers) is LowerCaseHeaders:  # what the transports pass: one lookup
        return headers.get("authorization")
    value = headers.get("Authorization")
    if value is not None:
        return value
    for name, value in headers.items():
        if name.lower() == "authorization":
            return value
    return None


def _digest(token: str) -> bytes:
    # Comparing fixed-length digests keeps the comparison time independent of the
    # length of the configured tokens as well as of their content.
    return hashlib.sha256(token.encode("utf-8")).digest()


def bearer_tokens(
    tokens: Mapping[str, str | Principal | None] | Iterable[str],
) -> Callable[[Request], Principal | None]:
    """An ``authenticate`` hook accepting ``Authorization: Bearer <token>`` for ``tokens``.

    ``tokens`` is either an iterable of accepted tokens (each authenticates as
    ``Principal("token-<n>")``, n counting from 1 in the given order) or a mapping from
    token to what it authenticates as: a :class:`Principal`, a tenant name (``str``,
    giving ``Principal(name=tenant, tenant=tenant)``), or ``None`` (``Principal("token-<n>")``).

    The presented token is compared with every configured token using
    :func:`hmac.compare_digest` over SHA-256 digests, without stopping at the first match,
    so the time taken reveals neither which token matched nor how long any token is. An
    ``Authorization`` header once found valid is remembered (looked up before being parsed
    and hashed again on the next request): only the exact same header finds itself there,
    and a refused token is always compared in full.
    The scheme name is matched case-insensitively (RFC 9110 §11.1: "It uses a
    case-insensitive token to identify the authentication scheme").

    Raises :class:`~scim2_core.ConfigurationError` for an empty set of tokens, a token
    that is empty or contains whitespace, or a mapping value of another type.
    """
    if isinstance(tokens, str):
        raise ConfigurationError("bearer_tokens() takes a collection of tokens, not one string")
    items = list(tokens.items()) if isinstance(tokens, Mapping) else [(t, None) for t in tokens]
    if not items:
        raise ConfigurationError("bearer_tokens() needs at least one token")
    table: list[tuple[bytes, Principal]] = []
    for number, (token, target) in enumerate(items, start=1):
        if not isinstance(token, str) or not token or token != "".join(token.split()):
            raise ConfigurationError(f"bearer token #{number} is empty or contains whitespace")
        if target is None:
            principal = Principal(f"token-{number}")
        elif isinstance(target, Principal):
            principal = target
        elif isinstance(target, str):
            principal = Principal(name=target, tenant=target)
        else:
            raise ConfigurationError(
                f"bearer token #{number} maps to {type(target).__name__}; "
                "expected a Principal, a tenant name or None"
            )
        table.append((_digest(token), principal))

    # The Authorization headers already presented and found valid, each with its
    # principal: a client sends the same header on every request, and parsing and hashing
    # it again would find the same. Only a header whose token passed the comparison below
    # is kept, and at most _REMEMBERED of them; a refused token is always compared in full.
    valid: dict[str, Principal] = {}

    def authenticate(request: Request) -> Principal | None:
        header = _authorization(request)
        if header is None:
            return None
        # A dict lookup compares two strings only when their hashes are equal (then the
        # header is the remembered one): its time tells nothing of the tokens.
        known = valid.get(header)
        if known is not None:
            return known
        scheme, _, credentials = header.strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() != "bearer" or not credentials:
            return None
        presented = _digest(credentials)
        found: Principal | None = None
        for digest, principal in table:
            # No early exit: every configured token is compared, match or not.
            if hmac.compare_digest(presented, digest):
                found = principal
        if found is not None and len(valid) < _REMEMBERED:
            valid[header] = found
        return found

    return authenticate
