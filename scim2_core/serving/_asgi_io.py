"""What :class:`scim2_core.asgi.ASGIApp` receives and sends besides the engine's answer: the
request body, the lifespan protocol and the response events (standard library only)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .._types import Response
from ._targets import asgi_response_headers

__all__ = [
    "Disconnected",
    "has_no_body",
    "lifespan",
    "read_body",
    "send_response",
]

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: The HTTP versions whose framing RFC 9112 defines.
_HTTP1 = frozenset(("1.0", "1.1"))
#: The methods whose content the engine never reads (RFC 9110 §9.3.1: "content received in
#: a GET request has no generally defined semantics").
_READS = frozenset(("GET", "HEAD"))


class Disconnected(Exception):
    """The client went away before sending its whole body."""


def has_no_body(scope: MutableMapping[str, Any], length: str | None, encoding: str | None) -> bool:
    """Whether an ASGI HTTP request is a ``GET`` or ``HEAD`` known to have no body from its
    head alone, so that its body need not be received at all (the ASGI HTTP spec lets an
    application answer without calling ``receive``).

    RFC 9112 §6.3: in HTTP/1.x, "If this is a request message and none of the above are
    true [no Transfer-Encoding, no Content-Length], then the message body length is zero";
    a ``Content-Length: 0`` says so too. Only reads are spared the ``receive``: a test
    client may hand an application a body its head does not announce, and a write's
    body is read as before.
    """
    if scope["method"] not in _READS or encoding is not None:
        return False
    if scope.get("http_version", "1.1") not in _HTTP1:
        return False
    if length is None:
        return True
    length = length.strip()
    return length.isdigit() and int(length) == 0


async def read_body(
    receive: Receive, limit: int, timeout: float | None, declared: int | None
) -> bytes | None:
    """The request body, or ``None`` as soon as it is known to exceed ``limit`` bytes.

    A ``declared`` Content-Length above the limit is refused before receiving anything;
    otherwise reading stops at the first chunk that takes the total above the limit. Raises
    :class:`TimeoutError` when the whole body has not arrived ``timeout`` seconds after
    the first read (a client trickling bytes does not restart the clock), and
    :class:`Disconnected` when the client goes away first.
    """
    if declared is not None and declared > limit:
        return None
    async with asyncio.timeout(timeout):
        return await _receive_all(receive, limit)


async def _receive_all(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_response(
    send: Send, method: str, response: Response, *, close: bool = False
) -> None:
    """Send ``response`` to a ``method`` request in the two events ASGI has for it;
    ``close`` adds ``Connection: close`` (servers then close)."""
    headers = asgi_response_headers(response)
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": response["status"], "headers": headers})
    # RFC 9110 §9.3.2: the server MUST NOT send content in the response to HEAD.
    body = b"" if method == "HEAD" else response["body"]
    await send({"type": "http.response.body", "body": body})


async def lifespan(receive: Receive, send: Send) -> None:
    """Answer the lifespan protocol: nothing to start; the caller stops its workers after."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
