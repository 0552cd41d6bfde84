"""Apps that supervise processes; each scenario is one function, picked by MODULE:ATTR.

Events go to $OUT/events (one line each, appended atomically), so the test reads
what happened in which order. The supervised programs are small Python or sh
scripts from PROGRAMS below.
"""

import asyncio
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

from _record import ready, record

import graceful

PY = sys.executable
EVENTS = str(Path(os.environ["OUT"]) / "events")

# A program that records "NAME up", and on SIGTERM records "NAME got SIGTERM" and exits 0.
POLITE = """
import os, signal, sys, time
name, events = sys.argv[1], sys.argv[2]
def record(line):
    fd = os.open(events, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, (line + "\\n").encode())
    os.close(fd)
def term(*_):
    record(name + " got SIGTERM")
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
record(name + " up")
print(name + " up", flush=True)
while True:
    time.sleep(1000)
"""

# Ignores SIGTERM (records it), says "up" on stdout once the handler is set.
STUBBORN = """
import os, signal, sys, time
name, events = sys.argv[1], sys.argv[2]
def term(*_):
    fd = os.open(events, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, (name + " ignored SIGTERM\\n").encode())
    os.close(fd)
signal.signal(signal.SIGTERM, term)
print("up", flush=True)
while True:
    time.sleep(1000)
"""

# Starts two children in its own process group (one dies on SIGTERM, one ignores
# it), records their pids, then dies on SIGTERM itself.
PARENT = """
import os, subprocess, sys, time
events = sys.argv[1]
child = [sys.executable, "-c", sys.argv[2]]
kids = [subprocess.Popen([*child, mode, events]) for mode in ("dies", "ignores")]
time.sleep(1000)
"""
GRANDCHILD = """
import os, signal, sys, time
mode, events = sys.argv[1], sys.argv[2]
def record(line):
    fd = os.open(events, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, (line + "\\n").encode())
    os.close(fd)
def term(*_):
    record(f"grandchild {mode} got SIGTERM")
    if mode == "dies":
        sys.exit(0)
signal.signal(signal.SIGTERM, term)
record(f"grandchild {mode} {os.getpid()}")
os.write(1, f"grandchild {mode} up\\n".encode())  # one write: the two share a pipe
while True:
    time.sleep(1000)
"""


def on_state_recorder(managed: graceful.Managed, state: graceful.ProcessState) -> None:
    record(f"state {managed.name} {state} {time.monotonic():.6f} pid={managed.pid}")


async def crash_loop() -> int:
    """Exits 1 at once, every time: restarted with growing delays until it fails."""
    async with graceful.Supervisor() as sup:
        crashy = sup.start(
            ["sh", "-c", "echo crash $$; exit 1"],
            name="crashy",
            backoff=(0.1, 10.0),
            max_restarts=4,
            min_uptime=5.0,
            blocks_readiness=True,
            on_state=on_state_recorder,
        )
        code = await crashy.wait()
        from graceful._health.readiness import state

        record(f"final {crashy.state} {code} {crashy.restarts} {json.dumps(state.reasons())}")
        record(f"last lines {json.dumps(crashy.last_lines())}")
    return 0


async def counted_run_resets() -> int:
    """Early exit, a run past min_uptime, early exit, then it stays up: with
    max_restarts=1 the counted run in between must reset the count of early exits."""
    runs = Path(os.environ["OUT"]) / "runs"
    program = [
        "sh",
        "-c",
        f"n=$(cat {runs} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {runs};"
        " case $n in 1|3) exit 1;; 2) sleep 0.6; exit 1;; *) echo up; exec sleep 1000;; esac",
    ]
    async with graceful.Supervisor() as sup:
        flaky = sup.start(
            program, name="flaky", min_uptime=0.3, max_restarts=1, backoff=(0.05, 0.1)
        )
        up: asyncio.Future[object] = asyncio.ensure_future(lines_seen("flaky", "] up"))
        ended: asyncio.Future[object] = asyncio.ensure_future(flaky.wait())  # it failed
        await asyncio.wait({up, ended}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        state = "failed" if flaky.state == "failed" else "up"
        record(f"flaky {state} after {runs.read_text().strip()} runs")
    return 0


async def stop_timeout_past_the_deadline() -> None:
    """A process that ignores SIGTERM with a stop_timeout longer than the whole window:
    the deadline, not its own timeout, decides when it is SIGKILLed."""
    up = lines_seen("slow", "] up")
    graceful.spawn([PY, "-c", STUBBORN, "slow", EVENTS], name="slow", stop_timeout=60)
    await asyncio.wait_for(up, 30)
    ready()
    await graceful.wait_for_shutdown()


async def leaves_children() -> None:
    """A program that starts three children in its group and exits: they must not run
    on without it."""
    kids = Path(os.environ["OUT"]) / "kids"
    program = ["sh", "-c", f"for i in 1 2 3; do sleep 1000 & echo $! >> {kids}; done; exit 1"]
    async with graceful.Supervisor() as sup:
        leaver = sup.start(program, name="leaver", restart="never")
        await leaver.wait()
        ready()
        await graceful.wait_for_shutdown()


async def never() -> int:
    """restart="never" (exit 3) and "on-failure" with exit 0: neither is restarted."""
    async with graceful.Supervisor() as sup:
        three = sup.start(["sh", "-c", "exit 3"], name="three", restart="never")
        zero = sup.start(["sh", "-c", "exit 0"], name="zero")
        codes = [await three.wait(), await zero.wait()]
        record(f"never {three.state} {codes[0]} {three.restarts}")
        record(f"on-failure {zero.state} {codes[1]} {zero.restarts}")
    return 0


async def min_uptime() -> int:
    """The same program (runs 0.5 s, exits 1), once under min_uptime 0.1, once under 5."""
    program = ["sh", "-c", "sleep 0.5; exit 1"]
    quick_starts = asyncio.Event()
    starts = 0

    def count(managed: graceful.Managed, state: graceful.ProcessState) -> None:
        nonlocal starts
        if state == "running":
            starts += 1
            if starts == 3:
                quick_starts.set()

    async with graceful.Supervisor() as sup:
        counted = sup.start(
            program,
            name="counted",
            min_uptime=0.1,
            max_restarts=1,
            backoff=(0.05, 0.1),
            on_state=count,
        )
        early = sup.start(
            program, name="early", min_uptime=5.0, max_restarts=1, backoff=(0.05, 0.1)
        )
        await early.wait()
        await asyncio.wait_for(quick_starts.wait(), 30)
        record(f"early {early.state} {early.restarts}")
        record(f"counted {counted.state} {counted.restarts}")
    return 0


async def ordered() -> None:
    """c depends on b, b on a: started a, b, c; stopped c, b, a."""
    # "started" means alive for min_uptime, not "has run its first line": on a busy
    # machine b can be up before a has written a line. Ready once all three have
    # (their SIGTERM handlers are installed by then).
    up = [lines_seen(name, f"{name} up") for name in "abc"]
    sup = graceful.Supervisor()
    async with sup:
        a = sup.start([PY, "-c", POLITE, "a", EVENTS], name="a", min_uptime=0.2)
        sup.start([PY, "-c", POLITE, "b", EVENTS], name="b", depends_on=[a], min_uptime=0.2)
        c = sup.start([PY, "-c", POLITE, "c", EVENTS], name="c", depends_on=["b"], min_uptime=0.2)
        async for state in c.states():
            if state == "running":
                break
        await asyncio.wait_for(asyncio.gather(*up), 30)
        ready()
        await graceful.wait_for_shutdown()


def lines_seen(name: str, ending: str, count: int = 1) -> "asyncio.Future[None]":
    """Resolves once process ``name`` has written ``count`` lines ending with ``ending``."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    seen = 0

    def one_more() -> None:
        nonlocal seen
        seen += 1
        if seen == count and not future.done():
            future.set_result(None)

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().endswith(ending):
                loop.call_soon_threadsafe(one_more)

    logging.getLogger(f"graceful.process.{name}").addHandler(Watch())
    return future


async def stubborn() -> None:
    """Two processes ignore SIGTERM: one has a stop_timeout, the other waits for the deadline."""
    up = [lines_seen(name, "] up") for name in ("timed", "untimed")]
    graceful.spawn([PY, "-c", STUBBORN, "timed", EVENTS], name="timed", stop_timeout=0.5)
    graceful.spawn([PY, "-c", STUBBORN, "untimed", EVENTS], name="untimed")
    await asyncio.wait_for(asyncio.gather(*up), 30)
    ready()
    await graceful.wait_for_shutdown()


async def group() -> None:
    """A process whose own children share its group: the stop reaches them too."""
    up = lines_seen("parent", " up", count=2)
    graceful.spawn([PY, "-c", PARENT, EVENTS, GRANDCHILD], name="parent", stop_timeout=0.5)
    await asyncio.wait_for(up, 30)
    ready()
    await graceful.wait_for_shutdown()


async def exit_codes() -> None:
    """Processes that exit with known statuses; main returns once all have ended."""
    sup = graceful.Supervisor()
    async with sup:
        for code in (0, 1, 2, 7, 255):
            sup.start(["sh", "-c", f"exit {code}"], name=f"p{code}", restart="never")
        sup.start(
            [PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGUSR1)"],
            name="usr1",
            restart="never",
        )
        codes = {m.name: await m.wait() for m in sup.processes}
    record(f"codes {json.dumps(codes)}")


async def essential() -> None:
    """An essential process that keeps crashing stops the app."""
    graceful.spawn(
        ["sh", "-c", "echo giving up; exit 4"],
        name="core",
        essential=True,
        max_restarts=1,
        backoff=(0.05, 0.1),
    )
    await graceful.wait_for_shutdown()
    record("main saw the shutdown")


async def flood() -> None:
    """Writers send the files the test made (10 MB each) to stdout and stderr at full
    speed; a 10 ms timer on the loop records how late it wakes, all along."""
    out = Path(os.environ["OUT"])
    handler = logging.FileHandler(out / "lines.log")
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.getLogger().addHandler(handler)
    writers = int(os.environ.get("WRITERS", "20"))
    loop = asyncio.get_running_loop()
    lates: list[float] = []
    done = False

    async def ticker() -> None:
        while not done:
            before = loop.time()
            await asyncio.sleep(0.01)
            lates.append(loop.time() - before - 0.01)

    tick = asyncio.ensure_future(ticker())
    started = time.monotonic()
    async with graceful.Supervisor() as sup:
        for w in range(writers):
            files = [str(out / f"w{w}.out"), str(out / f"w{w}.err")]
            script = 'cat "$0" & cat "$1" >&2; wait'
            sup.start(["sh", "-c", script, *files], name=f"w{w}", restart="never")
        codes = [await m.wait() for m in sup.processes]
    done = True
    await tick
    took = time.monotonic() - started
    handler.flush()
    lates.sort()
    record(
        f"flood codes {sorted(set(c or 0 for c in codes))} p99 {lates[len(lates) * 99 // 100]:.4f}"
        f" worst {lates[-1]:.4f} ticks {len(lates)} took {took:.2f}"
    )


async def hup_handler() -> None:
    """An app that handles SIGHUP itself, and one process with rolling restarts."""
    got: asyncio.Event = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, got.set)
    up = lines_seen("r", "r up")
    uptime = float(os.environ.get("MIN_UPTIME", "0.1"))
    r = graceful.spawn(
        [PY, "-c", POLITE, "r", EVENTS], name="r", rolling_restart=True, min_uptime=uptime
    )
    await asyncio.wait_for(up, 30)
    async for state in r.states():
        if state == "running":
            break
    ready()
    await got.wait()
    record("app got SIGHUP")
    await graceful.wait_for_shutdown()


# Says "NAME waiting" on stdout, blocks until its FIFO (argv[3]) is written to, then
# reports on $NOTIFY_SOCKET (systemd's notify protocol): a status, then READY=1.
NOTIFIER = """
import os, socket, sys, time
name, events, fifo = sys.argv[1], sys.argv[2], sys.argv[3]
os.write(1, (name + " waiting\\n").encode())
with open(fifo) as f:
    f.read()
address = os.environ["NOTIFY_SOCKET"]
if address.startswith("@"):
    address = "\\0" + address[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"STATUS=warming up", address)
s.sendto(b"READY=1\\nSTATUS=serving", address)
while True:
    time.sleep(1000)
"""


async def notify_order() -> None:
    """db reports readiness itself (ready="notify"), from a child of a shell wrapper;
    web depends on db: it starts once db says READY=1, not after db's min_uptime."""
    fifo = Path(os.environ["OUT"]) / "go"
    os.mkfifo(fifo)
    waiting = lines_seen("db", "db waiting")
    web_up = lines_seen("web", "web up")
    async with graceful.Supervisor() as sup:
        wrapper = '"$0" -c "$1" db "$2" "$3"; exit $?'  # no exec: the sender is sh's child
        db = sup.start(
            ["sh", "-c", wrapper, PY, NOTIFIER, EVENTS, str(fifo)],
            name="db",
            ready="notify",
            min_uptime=0,
            on_state=on_state_recorder,
        )
        web = sup.start(
            [PY, "-c", POLITE, "web", EVENTS], name="web", depends_on=[db], min_uptime=0
        )
        await asyncio.wait_for(waiting, 30)
        record(f"while db waits: db={db.state} web={web.state} web pid={web.pid}")
        await asyncio.to_thread(fifo.write_text, "go")  # the handshake: db may report now
        async for state in db.states():
            if state == "running":
                break
        await asyncio.wait_for(web_up, 30)
        record(f"db says {db.status!r}; db pid={db.pid}")
        ready()
        await graceful.wait_for_shutdown()


async def success_codes() -> int:
    """Exit 2 on purpose is a success for a program that says so: not restarted."""
    async with graceful.Supervisor() as sup:
        two = sup.start(["sh", "-c", "exit 2"], name="two", success_codes=(0, 2))
        record(f"success {await two.wait()} {two.state} {two.restarts}")
    return 0


async def steady_crasher() -> int:
    """Runs 0.3 s, then exits 1, four times: past min_uptime, and up longer than it
    waited, each restart waits the first delay again."""
    async with graceful.Supervisor() as sup:
        runs = Path(os.environ["OUT"]) / "runs"
        program = [
            "sh",
            "-c",
            f"n=$(cat {runs} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {runs};"
            ' [ "$n" -le 4 ] || exit 0; sleep 0.3; exit 1',
        ]
        crasher = sup.start(program, name="crasher", min_uptime=0.1, backoff=(0.1, 10.0))
        await crasher.wait()
    return 0


async def orphans_if_killed() -> None:
    """Two programs (one ignores SIGTERM) and their pids: the test SIGKILLs the app."""
    up = [lines_seen("polite", "polite up"), lines_seen("stubborn", "] up")]
    polite = graceful.spawn([PY, "-c", POLITE, "polite", EVENTS], name="polite")
    stubborn = graceful.spawn([PY, "-c", STUBBORN, "stubborn", EVENTS], name="stubborn")
    await asyncio.wait_for(asyncio.gather(*up), 30)
    record(f"pids {polite.pid} {stubborn.pid}")
    ready()
    await graceful.wait_for_shutdown()


# Writes a plain line to each stream, lines that name their level, and a traceback.
SPEAKER = """
import sys
print("plain out", flush=True)
print("plain err", file=sys.stderr, flush=True)
print("WARN disk almost full", flush=True)
print("2026-12-06 10:00:00 ERROR db unreachable", file=sys.stderr, flush=True)
print("Traceback (most recent call last):", file=sys.stderr)
print('  File "x.py", line 1, in <module>', file=sys.stderr)
print("ValueError: boom", file=sys.stderr, flush=True)
"""


async def levels() -> int:
    """A plain program and a graceful app under a supervisor: each line at its level."""
    async with graceful.Supervisor() as sup:
        sup.start([PY, "-c", SPEAKER], name="plain", restart="never")
        app = [PY, "-m", "graceful", "--grace", "1", "logs_an_error:main"]
        path = os.pathsep.join(
            filter(None, [os.path.dirname(__file__), os.environ.get("PYTHONPATH")])
        )
        sup.start(app, name="kid", restart="never", env={"PYTHONPATH": path})
        for m in sup.processes:
            await m.wait()
    return 0


async def controlled() -> None:
    """Two programs for python -m graceful ctl (the app runs with --control-socket)."""
    up = [lines_seen("web", "web up"), lines_seen("feed", "feed up")]
    graceful.spawn([PY, "-c", POLITE, "web", EVENTS], name="web")
    graceful.spawn([PY, "-c", POLITE, "feed", EVENTS], name="feed")
    await asyncio.wait_for(asyncio.gather(*up), 30)
    ready()
    await graceful.wait_for_shutdown()
