"""Webhooks: each event POSTed as an RFC 9967 SCIM Security Event Token (an RFC 8417
SET, signed as a JWS) to a configured URL, by the delivery worker.

The JOSE library (``joserfc``, the ``events`` extra) is imported when a webhook is made,
never by ``import scim2_core``.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any, Final

from ._model import ChangeEvent

__all__ = ["SET_MEDIA_TYPE", "Webhook", "event_uri", "load_signing_key", "security_event_token"]

#: RFC 8417 §2.3: "application/secevent+jwt"; RFC 8935 §2: the push delivery media type.
SET_MEDIA_TYPE: Final = "application/secevent+jwt"

_PROV: Final = "urn:ietf:params:SCIM:event:prov:"

#: RFC 9967 §2.4 provisioning events: the ``:full`` variants carry the resource in
#: ``data``; a ``touched`` resource (its derived ``groups``, or a group's ``members``,
#: changed through another write) is a ``patch:notice`` naming the attribute.
_URIS: Final = {
    "created": _PROV + "create:full",
    "replaced": _PROV + "put:full",
    "patched": _PROV + "patch:full",
    "deleted": _PROV + "delete",
    "touched": _PROV + "patch:notice",
}


def event_uri(event: ChangeEvent) -> str:
    """The RFC 9967 event type URI of ``event``."""
    return _URIS[event.kind]


def _endpoint(resource_type: str) -> str:
    return {"User": "/Users", "Group": "/Groups"}.get(resource_type, f"/{resource_type}s")


def security_event_token(
    event: ChangeEvent, *, issuer: str, audience: str | None = None, endpoint: str | None = None
) -> dict[str, Any]:
    """The SET claims of ``event`` (RFC 8417 §2.2, profiled by RFC 9967).

    ``jti`` is the event id (the same on a redelivery: receivers deduplicate on it),
    ``sub_id`` the resource (RFC 9967: format ``scim``, its relative ``uri``), ``txn``
    the request id, ``toe`` the time of the change. ``endpoint`` is the resource type's
    endpoint (default ``/Users``, ``/Groups``).
    """
    path = endpoint or _endpoint(event.resource_type)
    body: dict[str, Any] = {}
    if event.after is not None and event.kind != "deleted":
        body["data"] = event.after
    if event.version is not None:
        body["version"] = event.version
    if event.kind == "touched":
        body["attributes"] = ["members"] if event.resource_type == "Group" else ["groups"]
    if event.members_added:
        body["membersAdded"] = list(event.members_added)
    if event.members_removed:
        body["membersRemoved"] = list(event.members_removed)
    claims: dict[str, Any] = {
        "jti": event.event_id,
        "iss": issuer,
        "iat": int(time.time()),
        "sub_id": {"format": "scim", "uri": f"{path}/{event.id}"},
        "events": {event_uri(event): body},
    }
    if audience is not None:
        claims["aud"] = audience
    if event.request_id is not None:
        claims["txn"] = event.request_id
    if event.time:
        claims["toe"] = _epoch(event.time)
    if event.tenant is not None:
        claims["tenant"] = event.tenant
    return claims


def _epoch(stamp: str) -> int:
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return int(time.time())


def load_signing_key(secret: str | bytes | None = None, *, pem: bytes | None = None) -> Any:
    """A JWS signing key: a shared ``secret`` (HS256) or a PEM private key (RS256 for
    RSA, ES256 for a P-256 EC key). Needs the ``events`` extra (``joserfc``)."""
    from joserfc import jwk

    if pem is not None:
        for kty in ("RSA", "EC", "OKP"):
            try:
                return jwk.import_key(pem, kty)
            except Exception:  # not a key of this type: try the next
                continue
        raise ValueError("the PEM file holds no RSA, EC or Ed25519 private key")
    if not secret:
        raise ValueError("a webhook needs a secret or a PEM key to sign with")
    return jwk.OctKey.import_key(secret)


def _algorithm(key: Any) -> str:
    kty = getattr(key, "key_type", None)
    if kty == "RSA":
        return "RS256"
    if kty == "EC":
        return "ES256"
    if kty == "OKP":
        return "EdDSA"
    return "HS256"


class Webhook:
    """A :class:`~scim2_core.events.Consumer` that POSTs each event to ``url`` as a
    signed SET (``Content-Type: application/secevent+jwt``, RFC 8935 §2). A 2xx answer
    is success; anything else, a timeout or a refused connection raises, so the worker
    retries (the same ``jti``)."""

    def __init__(
        self,
        url: str,
        *,
        key: Any,
        issuer: str = "scim2-core",
        audience: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"a webhook URL must be http(s), got {url!r}")
        self.url = url
        self.name = f"webhook:{url}"
        self.key = load_signing_key(key) if isinstance(key, (str, bytes)) else key
        self.algorithm = _algorithm(self.key)
        self.issuer = issuer
        self.audience = audience
        self.timeout = timeout

    def token(self, event: ChangeEvent) -> str:
        """The compact JWS of ``event``'s SET."""
        from joserfc import jws

        claims = security_event_token(event, issuer=self.issuer, audience=self.audience)
        payload = json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode()
        header = {"alg": self.algorithm, "typ": "secevent+jwt"}
        return jws.serialize_compact(header, payload, self.key, algorithms=[self.algorithm])

    def deliver(self, event: ChangeEvent) -> None:
        request = urllib.request.Request(
            self.url,
            data=self.token(event).encode("ascii"),
            method="POST",
            headers={"Content-Type": SET_MEDIA_TYPE, "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{self.url} answered {exc.code}") from None
        if not 200 <= status < 300:
            raise RuntimeError(f"{self.url} answered {status}")
