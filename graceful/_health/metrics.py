"""``GET /metrics`` (``--metrics on``): the Prometheus text format, from the health
server's thread, like the probes.

Written here rather than with ``prometheus_client``: a dozen gauges and counters
whose values graceful already holds, read without a lock (each is one attribute);
the client library would add a dependency, a registry and its own process
collector for that. The tests parse the output with ``prometheus_client``'s own
parser. Names follow its conventions: ``_seconds``, ``_total`` for counters, and
the standard ``process_*`` figures read from ``/proc/self``.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from .checks import failures as check_failures
from .lag import LoopLag
from .readiness import state as readiness

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .._core.runtime import Run

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


Metric = Callable[[str, str, str, list[tuple[str, float]]], None]


def exposition(lag: LoopLag) -> bytes:
    """Every metric, as the body of the answer."""
    out: list[str] = []

    def metric(name: str, kind: str, text: str, samples: list[tuple[str, float]]) -> None:
        out.append(f"# HELP {name} {text}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            out.append(f"{name}{labels} {_number(value)}")

    stopping = readiness.stopping
    metric("graceful_ready", "gauge", "1 when the app is ready for traffic (/readyz, without"
           " the checks)", [("", 0 if stopping or readiness.reasons() else 1)])  # fmt: skip
    metric("graceful_stopping", "gauge", "1 once a stop has begun", [("", int(stopping))])
    now_lag = lag.lag()
    metric("graceful_loop_lag_seconds", "gauge", "how late the event loop is now",
           [("", now_lag or 0.0)])  # fmt: skip
    metric("graceful_loop_lag_max_seconds", "gauge", "the latest the event loop has been"
           " since start", [("", max(lag.max_seen, now_lag or 0.0))])  # fmt: skip
    run = _run()
    metric("graceful_requests_in_flight", "gauge", "requests being handled (integrations)",
           [("", run.requests_in_flight if run is not None else 0)])  # fmt: skip
    metric("graceful_requests_cut_total", "counter", "requests cut at the end of the drain",
           [("", run.cut_count() if run is not None else 0)])  # fmt: skip
    metric("graceful_readiness_check_failures_total", "counter", "failed runs of each"
           " readiness check", [(_labels(check=n), v) for n, v in sorted(check_failures.items())])  # fmt: skip
    processes = _processes()
    metric("graceful_supervised_up", "gauge", "1 while the supervised process is up",
           [(_labels(name=n), int(up)) for n, up, _ in processes])  # fmt: skip
    metric("graceful_supervised_restarts_total", "counter", "restarts of the supervised process",
           [(_labels(name=n), r) for n, _, r in processes])  # fmt: skip
    _process_metrics(metric)
    return ("\n".join(out) + "\n").encode()


def _run() -> Run | None:
    from .._core.runtime import current

    return current()


def _processes() -> list[tuple[str, bool, int]]:
    from .._core.parts import registered

    return [p for part in registered() for p in part.processes()]


def _process_metrics(metric: Metric) -> None:
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        utime, stime, start = int(fields[11]), int(fields[12]), int(fields[19])
        vsize, rss = int(fields[20]), int(fields[21])
        with open("/proc/stat", "rb") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith(b"btime"))
        fds = len(os.listdir("/proc/self/fd"))
        import resource

        max_fds = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (OSError, ValueError, IndexError, StopIteration):
        return
    metric("process_cpu_seconds_total", "counter", "user and system CPU time spent",
           [("", (utime + stime) / _TICKS)])  # fmt: skip
    metric("process_resident_memory_bytes", "gauge", "resident memory", [("", rss * _PAGE)])
    metric("process_virtual_memory_bytes", "gauge", "virtual memory", [("", vsize)])
    metric("process_start_time_seconds", "gauge", "start time since the epoch",
           [("", boot + start / _TICKS)])  # fmt: skip
    metric("process_open_fds", "gauge", "open file descriptors", [("", fds)])
    metric("process_max_fds", "gauge", "the limit of open file descriptors",
           [("", max_fds if max_fds >= 0 else float("inf"))])  # fmt: skip


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))
