"""Helpers shared by the core tests: they speak only the plain-dict contract."""

from __future__ import annotations

import atexit
import gc
import json
import os
import shutil
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scim2_core import Engine, Options
from scim2_core.backends import Backend, MemoryBackend

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BASE = "https://example.com/scim/v2"

#: How long a test waits for a server process it started to listen, or to exit once told
#: to stop. Only a guard against a hang: a server that cannot start exits, and every wait
#: that uses this looks at ``proc.poll()`` to fail at once with its log. A healthy start
#: under coverage on a loaded two-core machine was seen to take over 30 s (2026-11-30).
SERVER_DEADLINE = 300.0

#: A RAM file system for the tests' files when the machine has one with room (some test
#: databases hold 10,000 users): fsync returns at once there. Nothing the tests check depends
#: on a flush to disk (tests/conftest.py says why).
RAM_DIR, RAM_NEEDED = Path("/dev/shm"), 2 << 30


def ram_dir() -> Path | None:
    """/dev/shm when it is there, writable and roomy enough; None otherwise."""
    if not RAM_DIR.is_dir() or not os.access(RAM_DIR, os.W_OK):
        return None
    return RAM_DIR if shutil.disk_usage(RAM_DIR).free >= RAM_NEEDED else None


def scratch_dir(prefix: str) -> Path:
    """A new directory for files made before any test runs (settings read at import, a
    session's database), on the RAM file system when there is one; removed when this
    process ends. A test's own files go in ``tmp_path``, which tests/conftest.py puts there."""
    made = Path(tempfile.mkdtemp(prefix=prefix, dir=ram_dir()))
    atexit.register(shutil.rmtree, made, ignore_errors=True)
    return made


class Result:
    """A response, with its body decoded."""

    def __init__(self, response: dict[str, Any]) -> None:
        self.status: int = response["status"]
        self.headers: dict[str, str] = response["headers"]
        self.raw: bytes = response["body"]
        self.json: Any = json.loads(response["body"]) if response["body"] else None

    def __repr__(self) -> str:
        return f"<Result {self.status} {self.raw[:300]!r}>"


class ForwardingBackend:
    """A backend that forwards every call of the protocol to ``inner``: subclass it to make one
    call misbehave (a bug, a concurrent delete) on whichever backend the test runs on.

    Every method is spelled out: ``isinstance(x, Backend)`` looks methods up statically, so a
    ``__getattr__`` forwarder would not count as a backend.
    """

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.never_blocks = inner.never_blocks

    def bind(self, resource_types: Any) -> None:
        self.inner.bind(resource_types)

    def create(self, tenant: Any, rt: Any, resource: Any, **kw: Any) -> Any:
        return self.inner.create(tenant, rt, resource, **kw)

    def get(self, tenant: Any, rt: Any, id: str) -> Any:
        return self.inner.get(tenant, rt, id)

    def search(self, tenant: Any, rt: Any, query: Any) -> Any:
        return self.inner.search(tenant, rt, query)

    def update(self, tenant: Any, rt: Any, id: str, change: Any, **kw: Any) -> Any:
        return self.inner.update(tenant, rt, id, change, **kw)

    def delete(self, tenant: Any, rt: Any, id: str, **kw: Any) -> Any:
        return self.inner.delete(tenant, rt, id, **kw)

    def groups_of(self, tenant: Any, member_ids: Any) -> Any:
        return self.inner.groups_of(tenant, member_ids)

    def existing(self, tenant: Any, ids: Any) -> Any:
        return self.inner.existing(tenant, ids)


#: What :func:`make_backend` builds. MemoryBackend by default; the ``each_backend`` fixture
#: (tests/conftest.py) switches it to SQLBackend on a fresh SQLite file for one test, so that
#: tests/engine and tests/bulk run on both backends.
backend_factory: Callable[[], Backend] = MemoryBackend


def make_backend() -> Backend:
    """A new, empty backend of the kind the current test runs on."""
    return backend_factory()


def make_engine(**options: Any) -> Engine:
    """An Engine over :func:`make_backend`, with these :class:`~scim2_core.Options`."""
    return Engine(make_backend(), options=Options(**options) if options else None)


def call(
    engine: Engine,
    method: str,
    path: str,
    body: Any = None,
    *,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Result:
    request: dict[str, Any] = {"method": method, "path": path, "base_url": BASE}
    if query:
        request["query"] = query
    hdrs = {"Content-Type": "application/scim+json"} if body is not None else {}
    hdrs.update(headers or {})
    request["headers"] = hdrs
    if body is not None:
        request["body"] = body if isinstance(body, (bytes, str)) else json.dumps(body).encode()
    return Result(engine.handle(request))  # type: ignore[arg-type]


def user_body(user_name: str, **extra: Any) -> dict[str, Any]:
    return {"schemas": [USER], "userName": user_name, **extra}


def create_user(engine: Engine, user_name: str, **extra: Any) -> dict[str, Any]:
    result = call(engine, "POST", "/Users", user_body(user_name, **extra))
    assert result.status == 201, result
    return result.json  # type: ignore[no-any-return]


def create_group(engine: Engine, name: str, member_ids: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    body = {"schemas": [GROUP], "displayName": name, "members": [{"value": m} for m in member_ids]}
    result = call(engine, "POST", "/Groups", body)
    assert result.status == 201, result
    return result.json  # type: ignore[no-any-return]


def assert_error(result: Result, status: int, scim_type: str | None = None) -> None:
    """The response is a well-formed RFC 7644 §3.12 error with this status and scimType."""
    assert result.status == status, result
    assert result.headers["Content-Type"] == "application/scim+json"
    assert result.json["schemas"] == [ERROR]
    assert result.json["status"] == str(status)
    assert isinstance(result.json["detail"], str) and result.json["detail"]
    assert result.json.get("scimType") == scim_type, result


def bytes_grown(ask: Callable[[int], None], warm_up: int, measured: int) -> int:
    """How many bytes the process holds more after ``ask(i)`` for ``measured`` new values of
    ``i`` than before them, once ``warm_up`` calls have allocated what is allocated once."""
    for i in range(warm_up):
        ask(i)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for i in range(warm_up, warm_up + measured):
            ask(i)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    return sum(s.size_diff for s in after.compare_to(before, "filename"))
