"""graceful's init vs tini, dumb-init and catatonit, each as PID 1 of its own PID namespace.

    python benchmarks/bench_init.py [--runs N] [--quick] [--orphans N] [--json PATH]

Must run as root (``unshare --pid`` and ``apt-get``); without root it tries a user
namespace. Missing inits are installed with apt-get; if that fails it says so and
exits 2.

Every run starts ``unshare --pid --fork --mount-proc --kill-child INIT CMD``, so
INIT is PID 1 of a fresh namespace (its host pid is the one child of the
unshare process). graceful runs in exec mode:
``python -m graceful --log-level WARNING -- CMD``. Three numbers:

1. SIGTERM-to-exit, idle child: CMD is ``sh -c 'echo ready; exec sleep 1000'``.
   Once "ready" is read and PID 1's child is seen to be ``sleep``, SIGTERM goes
   to PID 1 (host pid); the clock stops when the unshare process exits, seen
   through a pidfd. ``sleep`` dies of the forwarded SIGTERM at once, so this is
   the init's own forward-reap-exit path plus the app's death. A ``no init`` row
   (``unshare --fork``, no new namespace, SIGTERM straight to ``sleep``) is the
   floor: the app's own shutdown and unshare's wait, without an init. pidfds on
   the app and PID 1 as well break the figure down: app dead, PID 1 dead,
   unshare gone.
2. Reaping 2,000 orphans: CMD is ``apps/bench_init_orphans.py`` which leaves
   2,000 orphans (re-parented to PID 1) blocked reading a pipe whose only write
   end the harness holds. The harness checks PID 1 has all 2,000 as children,
   opens a pidfd on each, closes the write end (the release, clock starts) and
   then polls, every ``POLL_INTERVAL``, PID 1's children list
   (``/proc/P/task/P/children``; a zombie stays there until reaped) and the
   pidfds (readable once the orphan has exited, reaped or not). The clock stops
   when none of the orphans is a child of PID 1 any more: all exited and reaped,
   0 zombies left. "last exit" is when the last pidfd became readable; the
   difference is the reap lag of the init.
3. Peak RSS of PID 1: ``VmHWM`` of ``/proc/P/status``, read right after the
   orphan run (before PID 1 is stopped with SIGTERM).
4. The container's memory with a Python service in it: the idle graceful app of
   bench_runtime (``apps/bench_graceful_app.py``), under graceful's own init
   (``python -m graceful APP``, PID 1 splits into the init and the app) or under
   INIT with graceful's init off (``INIT -- python -m graceful --init off APP``).
   Half a second after the app says "ready", the PSS (``smaps_rollup``) of PID 1 and
   of every process under it is summed: what the container is charged for, as the
   pages shared between the init and the app are counted once.

graceful runs twice: with graceful-init (the compiled init it execs into after the
fork, built at install when a C compiler was found) and with its Python init
(``GRACEFUL_PYTHON_INIT=1``), the fallback.

Runs are interleaved round-robin (every init, then the next round) after one
unrecorded warm-up round; medians and ratios vs tini are reported. Every wait is
bounded; a namespace still alive at the end of a run is killed (SIGKILL to its
PID 1 ends the whole namespace; ``--kill-child`` covers the unshare process).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from _common import BenchError, apt_install, child_env, fmt_ratio, read_line, spread

APPS = Path(__file__).resolve().parent / "apps"
ORPHAN_APP = APPS / "bench_init_orphans.py"
IDLE_CMD = ["sh", "-c", "echo ready; exec sleep 1000"]
UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
NO_INIT = "no init"
REFERENCE = "tini"
REAP_TARGET = 1.2
"""graceful's reaping median may be at most this multiple of tini's."""
DEFAULT_ORPHANS = 2000
QUICK_RUNS = 3
DEFAULT_RUNS = 15
POLL_INTERVAL = 0.0005
READY_TIMEOUT = 20.0
ORPHANS_READY_TIMEOUT = 60.0
REAP_TIMEOUT = 60.0
EXIT_TIMEOUT = 20.0
KILL_TIMEOUT = 5.0
PACKAGES = {"tini": "tini", "dumb-init": "dumb-init", "catatonit": "catatonit"}
T = TypeVar("T")
EXTRA_PATHS = {
    "tini": ["/usr/bin/tini"],
    "dumb-init": ["/usr/bin/dumb-init"],
    "catatonit": ["/usr/bin/catatonit", "/usr/libexec/podman/catatonit"],
}


@dataclass(frozen=True)
class Runner:
    name: str
    init: list[str]  # the init's argv, before the command; empty for "no init"
    env: tuple[tuple[str, str], ...] = ()
    own_init: bool = False  # graceful: the app runs under graceful's own init


@dataclass
class Sample:
    runner: str
    scenario: str  # sigterm | orphans
    round: int
    value_s: float | None = None  # SIGTERM-to-exit, or release-to-0-zombies
    app_exit_s: float | None = None  # sigterm: SIGTERM to the app's exit
    pid1_exit_s: float | None = None  # sigterm: SIGTERM to PID 1's exit
    last_exit_s: float | None = None  # orphans: release to the last orphan's exit
    vm_hwm_kb: int | None = None  # orphans: PID 1's peak RSS
    pid1_pss_kb: int | None = None  # memory: PID 1's PSS
    total_pss_kb: int | None = None  # memory: PSS of PID 1 and every process under it
    returncode: int | None = None
    error: str | None = None


@dataclass
class Summary:
    runner: str
    sigterm_ms: list[float] = field(default_factory=list)
    reap_ms: list[float] = field(default_factory=list)
    app_exit_ms: list[float] = field(default_factory=list)
    pid1_exit_ms: list[float] = field(default_factory=list)
    last_exit_ms: list[float] = field(default_factory=list)
    hwm_mb: list[float] = field(default_factory=list)
    pid1_pss_mb: list[float] = field(default_factory=list)
    total_pss_mb: list[float] = field(default_factory=list)
    codes: set[int] = field(default_factory=set)
    ok: int = 0
    failed: int = 0


# --- finding and installing the inits ---------------------------------------------------


def find_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for path in EXTRA_PATHS[name]:
        if os.access(path, os.X_OK):
            return path
    return None


def find_inits() -> dict[str, str]:
    """name -> path of tini, dumb-init and catatonit, installing the missing ones."""
    paths = {name: find_binary(name) for name in PACKAGES}
    missing = [PACKAGES[name] for name, path in paths.items() if path is None]
    if missing:
        if os.geteuid() != 0:
            sys.exit(f"missing {', '.join(missing)} and not root: cannot apt-get install them")
        if not apt_install(missing):
            print(f"could not install {', '.join(missing)}", file=sys.stderr)
            sys.exit(2)
        paths = {name: find_binary(name) for name in PACKAGES}
    found = {name: path for name, path in paths.items() if path is not None}
    if len(found) != len(PACKAGES):
        lost = sorted(set(PACKAGES) - set(found))
        print(f"installed, yet still not found: {', '.join(lost)}", file=sys.stderr)
        sys.exit(2)
    return found


def make_runners(inits: dict[str, str]) -> list[Runner]:
    graceful = [sys.executable, "-m", "graceful", "--log-level", "WARNING", "--"]
    return [
        Runner("graceful", graceful, own_init=True),
        Runner("graceful (Python init)", graceful, (("GRACEFUL_PYTHON_INIT", "1"),), True),
        Runner("tini", [inits["tini"], "--"]),
        Runner("dumb-init", [inits["dumb-init"], "--"]),
        Runner("catatonit", [inits["catatonit"], "--"]),
    ]


def unshare_prefix() -> list[str]:
    if os.geteuid() == 0:
        return UNSHARE
    return [*UNSHARE[:1], "--user", "--map-root-user", *UNSHARE[1:]]


# --- /proc and pidfd helpers -------------------------------------------------------------


def children(pid: int) -> list[int]:
    """Host pids of ``pid``'s children, zombies included; [] once ``pid`` is gone."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as f:
            return [int(x) for x in f.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def proc_field(pid: int, name: str) -> str | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key == name:
                    return value.strip()
    except (FileNotFoundError, ProcessLookupError):
        pass
    return None


def comm(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except (FileNotFoundError, ProcessLookupError):
        return None


def wait_for(what: str, timeout: float, probe: Callable[[], T | None]) -> T:
    """Call ``probe()`` every millisecond until it returns something truthy."""
    end = time.monotonic() + timeout
    while True:
        got = probe()
        if got is not None and got is not False:
            return got
        if time.monotonic() >= end:
            raise BenchError(f"{what}: not within {timeout:g} s")
        time.sleep(0.001)


def ns_pid1(proc: subprocess.Popen[bytes]) -> int:
    """Host pid of PID 1 of the namespace: the unshare process's only child."""
    kids = wait_for("PID 1 of the namespace", READY_TIMEOUT, lambda: children(proc.pid) or None)
    if len(kids) != 1:
        raise BenchError(f"unshare has {len(kids)} children, expected 1")
    return kids[0]


def stop_and_time(
    proc: subprocess.Popen[bytes], pid1: int, app: int | None = None
) -> dict[str, float]:
    """SIGTERM ``pid1``; seconds from it to the exit of the app, of PID 1 and of unshare.

    Each exit is seen through a pidfd (readable at the exit, before any reaping);
    the result has the keys "app" (if given), "pid1" and "unshare".
    """
    fds: dict[int, str] = {}
    try:
        for name, pid in (("unshare", proc.pid), ("pid1", pid1), ("app", app)):
            if pid is not None:
                fds[os.pidfd_open(pid)] = name  # ProcessLookupError: gone too early
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        seen: dict[str, float] = {}
        end = time.monotonic() + EXIT_TIMEOUT
        t0 = time.perf_counter()
        os.kill(pid1, signal.SIGTERM)
        while "unshare" not in seen:
            left = end - time.monotonic()
            if left <= 0:
                raise BenchError(f"still running {EXIT_TIMEOUT:g} s after SIGTERM")
            events = poller.poll(left * 1000)
            now = time.perf_counter()
            for fd, _ in events:
                seen[fds[fd]] = now - t0
                poller.unregister(fd)
    finally:
        for fd in fds:
            os.close(fd)
    return seen


def kill_leftover(proc: subprocess.Popen[bytes], pid1: int | None) -> None:
    if proc.poll() is None:
        if pid1 is not None:  # PID 1 dying takes the whole namespace down
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid1, signal.SIGKILL)
        proc.kill()  # --kill-child: the kernel sends SIGKILL to PID 1 as well
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(KILL_TIMEOUT)
    if proc.stdout is not None:
        proc.stdout.close()


def spawn(
    argv: list[str], err: IO[bytes], pass_fds: tuple[int, ...] = (), runner: Runner | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        cwd=APPS,
        env={**child_env(), **dict(runner.env if runner else ())},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=err,
        bufsize=0,
        pass_fds=pass_fds,
        start_new_session=True,
    )


def expect_ready(proc: subprocess.Popen[bytes]) -> None:
    assert proc.stdout is not None
    line = read_line(proc.stdout, READY_TIMEOUT)
    if line != b"ready":
        raise BenchError(f"expected 'ready', got {line!r}")


def describe(exc: Exception, err: IO[bytes]) -> str:
    err.seek(0)
    tail = err.read()[-2000:].decode(errors="replace").strip()
    return str(exc) + (f"; stderr: {tail}" if tail else "")


# --- the scenarios -----------------------------------------------------------------------


def in_namespace(
    sample: Sample,
    runner: Runner,
    argv: list[str],
    body: Callable[[subprocess.Popen[bytes], int], None],
) -> Sample:
    """Start ``argv``, wait for "ready", then ``body(proc, pid1)`` fills in ``sample``;
    an error goes into the sample, and whatever is left is killed."""
    with tempfile.TemporaryFile() as err:
        proc: subprocess.Popen[bytes] | None = None
        pid1: int | None = None
        try:
            proc = spawn(argv, err, runner=runner)
            expect_ready(proc)
            pid1 = ns_pid1(proc)
            body(proc, pid1)
        except (BenchError, OSError) as exc:
            sample.error = describe(exc, err)
        finally:
            if proc is not None:
                kill_leftover(proc, pid1)
    return sample


def run_sigterm(runner: Runner, round_no: int) -> Sample:
    sample = Sample(runner.name, "sigterm", round_no)
    if runner.init:
        argv = [*unshare_prefix(), *runner.init, *IDLE_CMD]
    else:  # the floor: same unshare wrapper, no namespace, no init
        argv = ["unshare", "--fork", "--kill-child", *IDLE_CMD]

    def measure(proc: subprocess.Popen[bytes], pid1: int) -> None:
        if runner.init:

            def sleeping_app() -> int | None:
                return next((k for k in children(pid1) if comm(k) == "sleep"), None)

            app: int | None = wait_for("the app running 'sleep'", READY_TIMEOUT, sleeping_app)
        else:
            wait_for("'sleep' running", READY_TIMEOUT, lambda: comm(pid1) == "sleep" or None)
            app = None
        times = stop_and_time(proc, pid1, app)
        sample.returncode = proc.wait(KILL_TIMEOUT)  # it has exited: this only reaps it
        sample.value_s = times["unshare"]
        sample.pid1_exit_s = times.get("pid1")
        sample.app_exit_s = times.get("app", sample.pid1_exit_s)

    return in_namespace(sample, runner, argv, measure)


def ns_pid_to_host(candidates: list[int], ns_pid: int) -> int | None:
    """The host pid, among ``candidates``, whose innermost namespace pid is ``ns_pid``."""
    for pid in candidates:
        nspid = proc_field(pid, "NSpid")
        if nspid is not None and int(nspid.split()[-1]) == ns_pid:
            return pid
    return None


def watch_reaping(pid1: int, orphans: set[int], release: Callable[[], None]) -> tuple[float, float]:
    """Release the orphans; seconds to the last exit and to the last reap (0 zombies)."""
    epoll = select.epoll(len(orphans))
    pidfds: list[int] = []
    try:
        for pid in orphans:
            fd = os.pidfd_open(pid)
            pidfds.append(fd)
            epoll.register(fd, select.EPOLLIN | select.EPOLLONESHOT)
        exited = 0
        t_exit: float | None = None
        t0 = time.perf_counter()
        release()  # every orphan sees EOF now
        end = time.monotonic() + REAP_TIMEOUT
        while True:
            time.sleep(POLL_INTERVAL)
            now = time.perf_counter()
            exited += len(epoll.poll(0, len(pidfds)))
            if t_exit is None and exited >= len(orphans):
                t_exit = now
            if orphans.isdisjoint(children(pid1)):  # no orphan left, alive or zombie
                t_reaped = time.perf_counter()
                break
            if time.monotonic() >= end:
                left = len(orphans.intersection(children(pid1)))
                raise BenchError(
                    f"{left} orphans still not reaped {REAP_TIMEOUT:g} s after release"
                )
        if t_exit is None:  # reaped implies exited: the last exits were seen just now
            exited += len(epoll.poll(0, len(pidfds)))
            t_exit = t_reaped
        return t_exit - t0, t_reaped - t0
    finally:
        epoll.close()
        for fd in pidfds:
            os.close(fd)


def run_orphans(runner: Runner, round_no: int, count: int) -> Sample:
    sample = Sample(runner.name, "orphans", round_no)
    release_r, release_w = os.pipe()
    held = [release_w]

    def release() -> None:
        """Close the harness's write end (the only one): every orphan sees EOF."""
        while held:
            os.close(held.pop())

    argv = [*unshare_prefix(), *runner.init, sys.executable, str(ORPHAN_APP), str(count)]
    argv.append(str(release_r))
    with tempfile.TemporaryFile() as err:
        proc: subprocess.Popen[bytes] | None = None
        pid1: int | None = None
        try:
            try:
                proc = spawn(argv, err, pass_fds=(release_r,), runner=runner)
            finally:
                os.close(release_r)
            assert proc.stdout is not None
            words = read_line(proc.stdout, ORPHANS_READY_TIMEOUT).split()
            if len(words) != 3 or words[:2] != [b"ready", str(count).encode()]:
                raise BenchError(f"expected 'ready {count} PID', got {b' '.join(words)!r}")
            pid1 = ns_pid1(proc)
            root = pid1

            def all_reparented() -> list[int] | None:
                kids = children(root)
                return kids if len(kids) >= count + 1 else None

            kids = wait_for(f"{count} orphans re-parented to PID 1", READY_TIMEOUT, all_reparented)
            app = ns_pid_to_host(kids, int(words[2]))
            if app is None:
                raise BenchError("the orphan maker is not a child of PID 1")
            orphans = set(kids) - {app}
            if len(orphans) != count:
                raise BenchError(f"PID 1 has {len(orphans)} orphans, expected {count}")
            sample.last_exit_s, sample.value_s = watch_reaping(pid1, orphans, release)
            if children(pid1) != [app]:
                raise BenchError(f"PID 1's children after reaping: {children(pid1)}")
            hwm = proc_field(pid1, "VmHWM")
            if hwm is None or not hwm.endswith(" kB"):
                raise BenchError(f"no VmHWM for PID 1: {hwm!r}")
            sample.vm_hwm_kb = int(hwm.split()[0])
            stop_and_time(proc, pid1)
            sample.returncode = proc.wait(KILL_TIMEOUT)
        except (BenchError, OSError) as exc:
            sample.error = describe(exc, err)
        finally:
            release()
            if proc is not None:
                kill_leftover(proc, pid1)
    return sample


def pss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise BenchError(f"no Pss for pid {pid}")


def tree(pid: int) -> list[int]:
    """``pid`` and every process under it."""
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo.extend(children(found[-1]))
    return found


def run_memory(runner: Runner, round_no: int) -> Sample:
    sample = Sample(runner.name, "memory", round_no)
    app = ["--log-level", "WARNING", "bench_graceful_app:main"]
    if runner.own_init:
        argv = [*unshare_prefix(), sys.executable, "-m", "graceful", *app]
    else:
        argv = [*unshare_prefix(), *runner.init, sys.executable, "-m", "graceful", "--init", "off"]
        argv += app

    def measure(proc: subprocess.Popen[bytes], pid1: int) -> None:
        time.sleep(0.5)  # the app loads what a stop needs right after "ready"
        sample.pid1_pss_kb = pss_kb(pid1)
        sample.total_pss_kb = sum(pss_kb(pid) for pid in tree(pid1))
        sample.value_s = 0.0
        stop_and_time(proc, pid1)
        sample.returncode = proc.wait(KILL_TIMEOUT)

    return in_namespace(sample, runner, argv, measure)


# --- the report --------------------------------------------------------------------------


def summarize(runners: list[Runner], samples: list[Sample]) -> dict[str, Summary]:
    out = {r.name: Summary(r.name) for r in runners}
    for s in samples:
        summary = out[s.runner]
        if s.error is not None or s.value_s is None:
            summary.failed += 1
            continue
        summary.ok += 1
        if s.returncode is not None:
            summary.codes.add(s.returncode)
        if s.scenario == "memory":
            if s.pid1_pss_kb is not None and s.total_pss_kb is not None:
                summary.pid1_pss_mb.append(s.pid1_pss_kb / 1024)
                summary.total_pss_mb.append(s.total_pss_kb / 1024)
        elif s.scenario == "sigterm":
            summary.sigterm_ms.append(s.value_s * 1000)
            if s.app_exit_s is not None and s.pid1_exit_s is not None:
                summary.app_exit_ms.append(s.app_exit_s * 1000)
                summary.pid1_exit_ms.append(s.pid1_exit_s * 1000)
        else:
            summary.reap_ms.append(s.value_s * 1000)
            if s.last_exit_s is not None:
                summary.last_exit_ms.append(s.last_exit_s * 1000)
            if s.vm_hwm_kb is not None:
                summary.hwm_mb.append(s.vm_hwm_kb / 1024)
    return out


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def report(runners: list[Runner], summaries: dict[str, Summary], rounds: int, count: int) -> bool:
    """Print the tables and the targets; return whether the reaping target was met."""
    ref = summaries[REFERENCE]
    ref_term, ref_reap = median(ref.sigterm_ms), median(ref.reap_ms)
    print(f"Python {platform.python_version()} on {platform.system()} {platform.release()}", end="")
    print(f" {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"Command: {shlex.join([sys.executable, *sys.argv])}")
    print(
        f"{rounds} runs per init and scenario, interleaved round-robin after 1 warm-up round;"
        f" each init is PID 1 of its own namespace ({shlex.join(unshare_prefix())} INIT CMD)."
    )
    print()
    print(
        "| init | SIGTERM-to-exit ms | vs tini | reap "
        f"{count:,} orphans ms | vs tini | last orphan exit ms | reap lag ms | peak RSS MB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in runners:
        s = summaries[r.name]
        term, reap, last = median(s.sigterm_ms), median(s.reap_ms), median(s.last_exit_ms)
        lag = median([r - e for r, e in zip(s.reap_ms, s.last_exit_ms, strict=True)])
        print(
            f"| {r.name} | {fmt(term)} | {fmt_ratio(term, ref_term)} | {fmt(reap)} | "
            f"{fmt_ratio(reap, ref_reap)} | {fmt(last)} | {fmt(lag)} | {fmt(median(s.hwm_mb))} |"
        )
    print()
    print("Spread (ms, min / p10 / p90 / max), exit codes, runs ok and failed (both scenarios):")
    print()
    print("| init | SIGTERM-to-exit | reap | exit codes | ok | failed |")
    print("|---|---|---|---|---:|---:|")
    for r in runners:
        s = summaries[r.name]
        codes = ", ".join(map(str, sorted(s.codes))) or "n/a"
        print(
            f"| {r.name} | {spread(s.sigterm_ms)} | {spread(s.reap_ms)} | {codes} |"
            f" {s.ok} | {s.failed} |"
        )
    print()
    print("SIGTERM-to-exit broken down (medians, ms after the SIGTERM to PID 1, from pidfds):")
    print()
    print("| init | app dead | PID 1 dead | unshare gone | PID 1 after the app |")
    print("|---|---:|---:|---:|---:|")
    for r in runners:
        s = summaries[r.name]
        app, pid1 = median(s.app_exit_ms), median(s.pid1_exit_ms)
        after = median([p - a for a, p in zip(s.app_exit_ms, s.pid1_exit_ms, strict=True)])
        print(
            f"| {r.name} | {fmt(app, 2)} | {fmt(pid1, 2)} | {fmt(median(s.sigterm_ms), 2)} |"
            f" {fmt(after, 2)} |"
        )
    print()
    print(
        "A container with the idle graceful app of bench_runtime in it (medians, MB; PSS counts"
        " the pages the init and the app share once):"
    )
    print()
    print("| init | PID 1 PSS | PID 1 and the app, PSS | vs tini |")
    print("|---|---:|---:|---:|")
    ref_total = median(ref.total_pss_mb)
    for r in runners:
        s = summaries[r.name]
        if not s.total_pss_mb:
            continue
        total = median(s.total_pss_mb)
        extra = "" if total is None or ref_total is None else f"{total - ref_total:+.1f} MB"
        print(f"| {r.name} | {fmt(median(s.pid1_pss_mb), 2)} | {fmt(total)} | {extra} |")
    print()
    print("Inits (before CMD):")
    for r in runners:
        print(f"  {r.name}: {shlex.join(r.init) if r.init else 'unshare --fork --kill-child'}")
    print()
    g = summaries["graceful"]
    g_term, g_reap = median(g.sigterm_ms), median(g.reap_ms)
    met = g_reap is not None and ref_reap is not None and g_reap <= REAP_TARGET * ref_reap
    floor = median(summaries[NO_INIT].sigterm_ms) if NO_INIT in summaries else None
    print("Targets:")
    print(
        f"  [{'met' if met else 'NOT MET'}] graceful reaping median <= {REAP_TARGET:.1f}x tini's:"
        f" {fmt(g_reap)} ms vs {fmt(ref_reap)} ms ({fmt_ratio(g_reap, ref_reap, 3)})"
    )
    over = None if g_term is None or floor is None else g_term - floor
    print(
        f"  [info] graceful SIGTERM-to-exit: {fmt(g_term)} ms vs tini {fmt(ref_term)} ms"
        f" ({fmt_ratio(g_term, ref_term, 3)}); no-init floor {fmt(floor)} ms,"
        f" so the init adds {fmt(over)} ms"
    )
    g_total = median(g.total_pss_mb)
    ref_total = median(ref.total_pss_mb)
    more = None if g_total is None or ref_total is None else g_total - ref_total
    print(
        f"  [info] container memory, graceful's init against tini's: {fmt(g_total)} MB vs"
        f" {fmt(ref_total)} MB ({'n/a' if more is None else f'{more:+.1f}'} MB; target +0.5 MB)"
    )
    return met


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        sys.exit(f"need {needed} open files for the pidfds, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--runs", type=int, help=f"measured runs per init and scenario (default {DEFAULT_RUNS})"
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke test: {QUICK_RUNS} runs per init"
    )
    parser.add_argument(
        "--orphans", type=int, default=DEFAULT_ORPHANS, help=f"default {DEFAULT_ORPHANS}"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the raw results")
    args = parser.parse_args(argv)
    rounds = args.runs if args.runs is not None else QUICK_RUNS if args.quick else DEFAULT_RUNS
    if rounds < 1 or args.orphans < 1:
        parser.error("--runs and --orphans must be at least 1")
    if not sys.platform.startswith("linux") or not hasattr(os, "pidfd_open"):
        sys.exit("needs Linux with pidfd_open (Python 3.9+, kernel 5.3+)")
    if shutil.which("unshare") is None:
        sys.exit("unshare (util-linux) is not installed")
    raise_fd_limit(args.orphans + 256)

    runners = make_runners(find_inits())
    term_runners = [*runners, Runner(NO_INIT, [])]
    jobs: list[tuple[Runner, str]] = [(r, "sigterm") for r in term_runners]
    jobs += [(r, "orphans") for r in runners]
    jobs += [(r, "memory") for r in runners]

    def run(job: tuple[Runner, str], round_no: int) -> Sample:
        runner, scenario = job
        if scenario == "sigterm":
            return run_sigterm(runner, round_no)
        if scenario == "memory":
            return run_memory(runner, round_no)
        return run_orphans(runner, round_no, args.orphans)

    for job in jobs:  # warm-up: .pyc files, page cache
        warm = run(job, -1)
        if warm.error is not None:
            print(f"warm-up of {job[0].name} ({job[1]}) failed: {warm.error}", file=sys.stderr)
    samples: list[Sample] = []
    total = rounds * len(jobs)
    done = 0
    for round_no in range(rounds):
        for job in jobs:
            sample = run(job, round_no)
            samples.append(sample)
            done += 1
            if sample.error is not None:
                print(f"run {round_no} of {job[0].name} ({job[1]}) failed: {sample.error}")
            if sys.stderr.isatty():
                print(f"\r{done}/{total} runs", end="", file=sys.stderr, flush=True)
    if sys.stderr.isatty():
        print(file=sys.stderr)

    summaries = summarize(term_runners, samples)
    met = report(term_runners, summaries, rounds, args.orphans)
    if args.json is not None:
        result: dict[str, Any] = {
            "python": sys.version,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "command": [sys.executable, *sys.argv],
            "runs_per_init": rounds,
            "orphans": args.orphans,
            "poll_interval_s": POLL_INTERVAL,
            "runners": [asdict(r) for r in term_runners],
            "samples": [asdict(s) for s in samples],
            "medians_ms": {
                name: {
                    "sigterm_to_exit": median(s.sigterm_ms),
                    "reap": median(s.reap_ms),
                    "app_exit_after_sigterm": median(s.app_exit_ms),
                    "pid1_exit_after_sigterm": median(s.pid1_exit_ms),
                    "last_orphan_exit": median(s.last_exit_ms),
                    "peak_rss_mb": median(s.hwm_mb),
                    "pid1_pss_mb": median(s.pid1_pss_mb),
                    "container_pss_mb": median(s.total_pss_mb),
                }
                for name, s in summaries.items()
            },
            "reap_target_met": met,
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nRaw results written to {args.json}")
    failed = sum(s.failed for s in summaries.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
