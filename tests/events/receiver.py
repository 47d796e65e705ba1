"""A local SET receiver for the webhook tests: stdlib HTTP on a thread, verifying nothing
itself; it keeps every body it was sent, and can be told to fail. :func:`claims` verifies
one with the tests' key."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: The key the tests sign webhooks with (HS256).
SECRET = "a-webhook-secret-of-some-length"


def claims(token: bytes, secret: str = SECRET) -> dict[str, Any]:
    """The verified claims of a compact JWS SET (raises if the signature is wrong)."""
    from joserfc import jws
    from joserfc.jwk import OctKey

    obj = jws.deserialize_compact(token, OctKey.import_key(secret), algorithms=["HS256"])
    assert obj.protected["typ"] == "secevent+jwt"
    return json.loads(obj.payload)  # type: ignore[no-any-return]


class Receiver:
    """``url`` to POST to; ``bodies`` what arrived (answered 202); ``fail_next`` requests
    answered 500 first; ``content_types`` as sent."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.content_types: list[str] = []
        self.fail_next = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:
                    # The sender died mid-request (a server killed between the headers and
                    # the body): nothing was delivered, as for any receiver; it comes again.
                    return
                with receiver.lock:
                    if receiver.fail_next > 0:
                        receiver.fail_next -= 1
                        self.send_response(500)
                        self.end_headers()
                        return
                    receiver.bodies.append(body)
                    receiver.content_types.append(self.headers.get("Content-Type", ""))
                # RFC 8935 §2.2: "the SET Recipient [...] MUST respond with [...] 202".
                self.send_response(202)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
