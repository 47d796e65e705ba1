"""Request counts, latency histograms and the event outbox's depth, in this process, written
out in the Prometheus text exposition format (version 0.0.4) by :meth:`Metrics.exposition`.

Label values are bounded: the route template (``/Users/{id}``), never the path; the method
(``OTHER`` for an unknown one); the status; the ``scimType``; the tenant (configured
names). No token, principal secret or attribute value is ever a label.
"""

from __future__ import annotations

import logging
import threading
from bisect import bisect_left
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["LATENCY_BUCKETS", "Metrics"]

logger = logging.getLogger("scim2_core.observe")

#: Upper bounds, in seconds, of the latency histogram's buckets.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_CountKey = tuple[str, str, int, str, str]  # method, route, status, scimType, tenant
_TimeKey = tuple[str, str]  # method, route


#: A series: [count, total seconds, then one count per latency bucket and +Inf].
_Series = list[Any]
_SERIES_LEN = 2 + len(LATENCY_BUCKETS) + 1


def _label(value: str) -> str:
    """A label value as the text format quotes it: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**pairs: str) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in pairs.items()) + "}"


def _add_into(total: dict[_CountKey, _Series], series: Mapping[_CountKey, _Series]) -> None:
    """Add every series of ``series`` into ``total``'s."""
    for key, counts in series.items():
        into = total.get(key)
        if into is None:
            total[key] = list(counts)
        else:
            for i, n in enumerate(counts):
                into[i] += n


def _number(value: float) -> str:
    return repr(float(value)) if value != int(value) else str(int(value))


class _ThreadSeries(threading.local):
    """The series one thread counts into: each thread adds to its own, without a lock (an
    increment is not atomic across threads), and the reader sums them."""

    def __init__(self, metrics: Metrics) -> None:
        self.series: dict[_CountKey, _Series] = {}
        #: A request's facts as the engine has them (see ``Observability``) -> its series
        #: in ``series``: no route template or label key to work out for a known shape.
        self.shapes: dict[Any, _Series] = {}
        metrics._adopt(self.series)


class Metrics:
    """What ``/metrics`` shows: requests by method, route, status, ``scimType`` and tenant,
    latency by method and route, and (given ``outbox``) each event consumer's pending and
    failed counts, read when scraped.

    ``outbox()`` returns ``{consumer: counts}`` with ``pending`` and ``failed`` attributes
    (``engine.events.counts``).
    """

    def __init__(self, outbox: Callable[[], Mapping[str, Any]] | None = None) -> None:
        self._outbox = outbox
        #: Held to add a series (a thread adds to its own dict) and to read them all.
        self._lock = threading.Lock()
        #: Each thread's series, with its thread; a thread's, once it has ended, is added
        #: into ``_ended`` (it can no longer change).
        self._threads: list[tuple[threading.Thread, dict[_CountKey, _Series]]] = []
        self._ended: dict[_CountKey, _Series] = {}
        self._local = _ThreadSeries(self)

    def _adopt(self, series: dict[_CountKey, _Series]) -> None:
        """A thread counts for the first time, into ``series``."""
        with self._lock:
            self._fold_ended()
            self._threads.append((threading.current_thread(), series))

    def _fold_ended(self) -> None:
        """Add the series of the threads that have ended into ``_ended`` (under the lock)."""
        alive = []
        for thread, series in self._threads:
            if thread.is_alive():
                alive.append((thread, series))
            else:
                _add_into(self._ended, series)
        self._threads = alive

    def record(
        self,
        method: str,
        route: str,
        status: int,
        scim_type: str | None,
        tenant: str | None,
        seconds: float,
    ) -> None:
        """Count one answered request that took ``seconds``: three adds into this
        thread's series of the request's labels."""
        series = self._series_of((method, route, status, scim_type or "", tenant or ""))
        series[0] += 1
        series[1] += seconds
        series[2 + bisect_left(LATENCY_BUCKETS, seconds)] += 1

    def _series_of(self, key: _CountKey) -> _Series:
        """This thread's series of ``key`` (made on first use): ``[count, total seconds,
        one count per latency bucket and +Inf]``, to add to."""
        mine = self._local.series
        series = mine.get(key)
        if series is None:
            series = [0, 0.0] + [0] * (_SERIES_LEN - 2)
            with self._lock:  # another thread reads the dict under the lock
                mine[key] = series
        return series

    def requests(self) -> dict[_CountKey, int]:
        """A copy of the request counts, keyed by (method, route, status, scimType, tenant)."""
        return {key: series[0] for key, series in self._copy()}

    def durations(self) -> dict[_TimeKey, tuple[int, float]]:
        """``{(method, route): (count, total seconds)}``."""
        out: dict[_TimeKey, tuple[int, float]] = {}
        for key, series in self._copy():
            count, total = out.get(key[:2], (0, 0.0))
            out[key[:2]] = (count + series[0], total + series[1])
        return out

    def _copy(self) -> list[tuple[_CountKey, _Series]]:
        """Every series, summed over the threads that counted."""
        with self._lock:
            self._fold_ended()
            total: dict[_CountKey, _Series] = {}
            _add_into(total, self._ended)
            for _, series in self._threads:
                _add_into(total, series)
        return list(total.items())

    def exposition(self) -> str:
        """Every metric in the Prometheus text format, version 0.0.4."""
        every = sorted(self._copy())
        counts = [(key, series[0]) for key, series in every]
        merged: dict[_TimeKey, _Series] = {}
        for key, series in every:
            into = merged.setdefault(key[:2], [0] * _SERIES_LEN)
            for i, n in enumerate(series):
                into[i] += n
        times = sorted((k, series[2:], series[1]) for k, series in merged.items())
        lines = [
            "# HELP scim_requests_total SCIM requests answered by the engine.",
            "# TYPE scim_requests_total counter",
        ]
        for (method, route, status, scim_type, tenant), n in counts:
            labels = _labels(
                method=method, route=route, status=str(status), scim_type=scim_type, tenant=tenant
            )
            lines.append(f"scim_requests_total{labels} {n}")
        lines += [
            "# HELP scim_request_duration_seconds Time the engine took to answer.",
            "# TYPE scim_request_duration_seconds histogram",
        ]
        for (method, route), buckets, total in times:
            running = 0
            for bound, n in zip((*LATENCY_BUCKETS, None), buckets, strict=True):
                running += n
                le = "+Inf" if bound is None else _number(bound)
                labels = _labels(method=method, route=route, le=le)
                lines.append(f"scim_request_duration_seconds_bucket{labels} {running}")
            labels = _labels(method=method, route=route)
            lines.append(f"scim_request_duration_seconds_sum{labels} {_number(total)}")
            lines.append(f"scim_request_duration_seconds_count{labels} {running}")
        lines += self._outbox_lines()
        return "\n".join(lines) + "\n"

    def _outbox_lines(self) -> list[str]:
        if self._outbox is None:
            return []
        try:
            counts = dict(self._outbox())
        except Exception:  # the storage is down: the request metrics still answer
            logger.exception("Cannot read the event outbox's counts")
            return []
        pending = [
            "# HELP scim_outbox_pending Events not yet delivered to a consumer.",
            "# TYPE scim_outbox_pending gauge",
        ]
        failed = [
            "# HELP scim_outbox_failed Events a consumer gave up on (parked as failed).",
            "# TYPE scim_outbox_failed gauge",
        ]
        for name, c in sorted(counts.items()):
            labels = _labels(consumer=str(name))
            pending.append(f"scim_outbox_pending{labels} {int(c.pending)}")
            failed.append(f"scim_outbox_failed{labels} {int(c.failed)}")
        return pending + failed
