"""``python -m graceful [OPTIONS] MODULE:ATTR [APP_ARGS...]``.

Parsing is by hand rather than argparse: the options stop at the first word that
is not one (everything after it belongs to the app), every error must be one line
with the fix, and this module is imported on every start, before asyncio.
"""

from __future__ import annotations

import os
import signal
import sys

from . import __version__ as VERSION
from . import _speak
from ._config import SOURCES, Config, init_wanted
from ._errors import GracefulError, TargetError, UsageError

# typing is not imported at run time: this module is loaded before the fork into
# the init, which should stay small (mypy treats TYPE_CHECKING as True).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

USAGE = """\
usage: python -m graceful [OPTIONS] MODULE:ATTR [APP_ARGS...]
       python -m graceful [OPTIONS] -- COMMAND [ARGS...]
       python -m graceful probe ready|live [--port P] [--host H] [--timeout S]
       python -m graceful ctl [--socket PATH] status|restart NAME|stop NAME|tail NAME

Run an asyncio service so that SIGTERM/SIGINT stop it cleanly within a deadline.
MODULE:ATTR names an async function called with no arguments; the app sees
sys.argv == [MODULE:ATTR, *APP_ARGS]. With -- COMMAND, run any program under
graceful's init (like tini): signals forwarded, orphans reaped, deadline enforced,
exit code passed through. With probe, ask the health server of such an app
(--health-port) whether it is ready or live: exit 0 yes, 1 no or unreachable, 2 bad
usage; see python -m graceful probe --help. With ctl, see and restart the supervised
processes of an app started with --control-socket; see python -m graceful ctl --help.

options (flags win over the environment variables):
  --grace SECONDS        whole window from the first stop signal to exit, 0.5 to
                         604800 [GRACEFUL_GRACE, default 10]
  --drain-delay SECONDS  after a stop signal, fail readiness at once and keep the app
                         running this long before the shutdown sequence; counts
                         inside --grace, at most half of it [GRACEFUL_DRAIN_DELAY,
                         default 0]
  --loop {auto,asyncio,uvloop}
                         event loop; auto = uvloop when installed
                         [GRACEFUL_LOOP, default auto]
  --log-level LEVEL      DEBUG, INFO, WARNING, ERROR, CRITICAL
                         [GRACEFUL_LOG_LEVEL, default INFO]
  --log-format {text,json}
                         graceful's lines as sentences, or one JSON object a line
                         for a log pipeline [GRACEFUL_LOG_FORMAT, default text]
  --init {auto,on,off}   run a separate init that reaps orphans and forwards signals;
                         auto = when PID 1, on = also as a subreaper elsewhere
                         [GRACEFUL_INIT, default auto]
  --task-errors {log,shutdown}
                         a background task dying of an exception nobody retrieved:
                         log it, or also start the shutdown with exit code 1
                         [GRACEFUL_TASK_ERRORS, default log]
  --health-port PORT     serve /livez and /readyz on this port (0: any free port)
                         [GRACEFUL_HEALTH_PORT, default off]
  --health-host ADDRESS  address of the health server
                         [GRACEFUL_HEALTH_HOST, default 0.0.0.0]
  --metrics {on,off}     also serve /metrics (Prometheus) on the health server
                         [GRACEFUL_METRICS, default off]
  --readiness {auto,manual}
                         auto = ready once main runs; manual = once the app calls
                         graceful.set_ready() [GRACEFUL_READINESS, default auto]
  --liveness-max-lag SECONDS
                         /livez fails while the event loop is this late
                         [GRACEFUL_LIVENESS_MAX_LAG, default 5]
  --workers N            run N copies of the app as supervised worker processes,
                         each with its own loop and hooks; crashed ones are
                         restarted, SIGHUP replaces them one at a time, all stop
                         within one --grace [GRACEFUL_WORKERS, default 0: none]
  --stop-signal SIGNAL   another signal that starts the same stop as SIGTERM (a
                         container's STOPSIGNAL), e.g. SIGQUIT; repeat it or give
                         a comma-separated list [GRACEFUL_STOP_SIGNAL, default none]
  --control-socket PATH  answer python -m graceful ctl on this Unix socket (only
                         this user, or root, may use it) [GRACEFUL_CONTROL_SOCKET,
                         default off]
  --version              print the version and exit
  -h, --help             print this help and exit

exit codes: 0 clean shutdown, or the int main returned; 1 the app, a hook or the
deadline failed; 2 bad usage or MODULE:ATTR not found; 130 forced by a second SIGINT.
With -- COMMAND: the command's code, 128+N if signal N killed it, 127 not found,
126 not executable.
"""

FLAGS = {flag: name for name, (flag, _var) in SOURCES.items()}


REPEATABLE = {"stop_signals"}


def parse(argv: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Split argv into raw option values and the rest (MODULE:ATTR and its args)."""
    flags: dict[str, str] = {}
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--" or not word.startswith("-"):
            break
        flag, eq, value = word.partition("=")
        if flag not in FLAGS:
            raise UsageError(f"unknown option {flag!r}; see python -m graceful --help")
        if not eq:
            i += 1
            if i == len(argv):
                raise UsageError(f"{flag} needs a value; see python -m graceful --help")
            value = argv[i]
        name = FLAGS[flag]
        if name in REPEATABLE and name in flags:  # --stop-signal A --stop-signal B
            value = f"{flags[name]},{value}"
        flags[name] = value
        i += 1
    return flags, list(argv[i:])


def split_target(spec: str) -> tuple[str, str]:
    """Check the form of ``MODULE:ATTR`` (before anything is imported or forked)."""
    module_name, sep, attr = spec.partition(":")
    if sep and module_name.endswith(".py"):
        raise TargetError(f"{spec!r} names a file; {_module_for(module_name[:-3], attr)}")
    names = module_name.split(".") + attr.split(".")
    if not sep or not all(n.isidentifier() for n in names):
        raise TargetError(
            f"{spec!r} is not MODULE:ATTR; name an async function, e.g. {_guess(spec)}"
        )
    return module_name, attr


def _module_for(path: str, attr: str) -> str:
    """How to name the module of the file at ``path`` (without .py) from here."""
    relative = os.path.relpath(os.path.abspath(path))
    folder, name = os.path.split(relative)
    if relative.startswith(os.pardir + os.sep) or not name.isidentifier():
        where = os.path.dirname(os.path.abspath(path))
        return f"run it from its directory: cd {where} && python -m graceful {name}:{attr}"
    module = relative.replace(os.sep, ".")
    if folder and not all(part.isidentifier() for part in folder.split(os.sep)):
        return f"run it from its directory: cd {folder} && python -m graceful {name}:{attr}"
    return f"drop the .py and name the module: {module}:{attr}"


def _guess(spec: str) -> str:
    """What the user probably meant: ``myapp.main`` -> ``myapp:main``, ``myapp`` ->
    ``myapp:main``."""
    if ":" not in spec and spec.replace(".", "_").isidentifier():
        module, dot, last = spec.rpartition(".")
        return f"{module}:{last}" if dot else f"{spec}:main"
    return "myapp:main"


def load_target(module_name: str, attr: str) -> Callable[[], Any]:
    """Import ``module_name`` and return ``attr`` (dotted attributes allowed).

    Only a module that does not exist is a :class:`TargetError`; an exception
    raised while the module imports is the app's own and propagates.
    """
    import importlib

    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        if getattr(
            sys.flags, "safe_path", False
        ):  # python -P (3.11+) / PYTHONSAFEPATH: the standard library first
            sys.path.append(cwd)
        else:
            sys.path.insert(0, cwd)
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only the target (or a package above it) missing is a usage error; a module
        # the app itself imports being missing is the app's own failure.
        missing = exc.name or ""
        if missing != module_name and not module_name.startswith(missing + "."):
            raise
        raise TargetError(
            f"no module named {module_name!r} (searched {cwd} and sys.path);"
            " check the spelling or run from the directory that holds it"
        ) from None
    for part in attr.split("."):
        owner = obj
        try:
            obj = getattr(owner, part)
        except AttributeError:
            raise TargetError(
                f"module {module_name!r} has no attribute {attr!r}"
                f"{_close_match(part, owner)}; check the name after the colon"
            ) from None
    if isinstance(obj, type):
        raise TargetError(
            f"{module_name}:{attr} is a class, not a function; point it at an async function"
            " (graceful calls it with no arguments and awaits what it returns)"
        )
    if not callable(obj):
        kind = type(obj).__name__
        article = "an" if kind[:1].lower() in "aeiou" else "a"
        raise TargetError(
            f"{module_name}:{attr} is {article} {kind}, not a function;"
            " point it at an async function"
        )
    from ._core.runtime import check_main

    check_main(obj, f"{module_name}:{attr}")
    return obj  # type: ignore[no-any-return]


def _close_match(name: str, owner: object) -> str:
    import difflib  # only on this error path

    names = [n for n in dir(owner) if not n.startswith("__")]
    match = difflib.get_close_matches(name, names, n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def main(
    argv: Sequence[str] | None = None,
    *,
    blocked: frozenset[signal.Signals] = frozenset(),
    inherited: frozenset[int] | None = None,
) -> int:
    """Entry point of ``python -m graceful`` and the ``graceful`` script; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["probe"]:  # first: a probe runs often, and imports nothing else
        return _probe(args[1:], blocked)
    if args[:1] == ["ctl"]:
        return _ctl(args[1:], blocked)
    options = args[: _options_end(args)]
    if "-h" in options or "--help" in options:
        sys.stdout.write(USAGE)
        return 0
    if "--version" in options:
        sys.stdout.write(f"graceful {VERSION}\n")
        return 0
    try:
        flags, rest = parse(args)
        config = Config.from_sources(flags, os.environ)
        _speak.use(config.log_format)
        if config.stop_signals:  # held until graceful's handler is in, as SIGTERM is
            extra = frozenset(signal.Signals(s) for s in config.stop_signals)
            signal.pthread_sigmask(signal.SIG_BLOCK, extra)
            blocked = blocked | extra
        if rest[:1] == ["--"]:
            command = rest[1:]
            if not command:
                raise UsageError("missing COMMAND after --, e.g. python -m graceful -- myserver")
            if config.workers:
                raise UsageError(
                    f"{config.spelling('workers')} runs copies of MODULE:ATTR, not of -- COMMAND;"
                    " drop it, or supervise the command with graceful.Supervisor"
                )
            # Options of the app runtime: a command has no health server, drain or
            # readiness of graceful's. Given as flags they are refused rather than
            # ignored; in the environment they are the image's settings for its app
            # (Dockerfile.example sets them so), which a command run in the same image
            # does not use.
            app_only = (
                "health_port",
                "health_host",
                "drain_delay",
                "readiness",
                "liveness_max_lag",
                "control_socket",
                "metrics",
            )
            given = [
                config.spelling(name) for name in app_only if config.spelling(name).startswith("--")
            ]
            if given:
                raise UsageError(
                    f"{', '.join(given)} {'apply' if len(given) > 1 else 'applies'} to a"
                    " graceful app (MODULE:ATTR), not to"
                    f" -- COMMAND; drop {'them' if len(given) > 1 else 'it'}, or supervise the"
                    " command from an app with graceful.Supervisor"
                )
            if not init_wanted(config, exec_mode=True):
                raise UsageError(
                    f"-- COMMAND needs Linux (its init uses Linux only calls), not {sys.platform}"
                )
            from ._pid1 import init as _init

            _init.start(config, command, blocked, inherited)
            raise AssertionError("unreachable: the init exits, the child execs")
        if not rest:
            raise UsageError("missing MODULE:ATTR, e.g. python -m graceful myapp:main")
        spec, app_args = rest[0], rest[1:]
        module_name, attr = split_target(spec)
        if init_wanted(config, exec_mode=False):
            from ._pid1 import init as _init

            _init.start(config, None, blocked, inherited)  # returns in the app process only
        from ._core.runtime import execute

        if config.workers:  # the parent supervises; only the workers import the app
            from ._supervise.workers import make_main

            return execute(
                config, lambda: make_main(config, spec, app_args), unblock=blocked, cli=True
            )
        sys.argv = [spec, *app_args]
        return execute(config, lambda: load_target(module_name, attr), unblock=blocked, cli=True)
    except GracefulError as exc:
        _speak.usage_error(str(exc))
        return exc.exit_code


def _ctl(args: list[str], blocked: frozenset[signal.Signals]) -> int:
    from ._ctl import ctl

    signal.pthread_sigmask(signal.SIG_UNBLOCK, blocked)
    try:
        return ctl(args, os.environ, sys.stdout, sys.stderr)
    except GracefulError as exc:
        _speak.usage_error(str(exc))
        return exc.exit_code


def _probe(args: list[str], blocked: frozenset[signal.Signals]) -> int:
    from ._probe import probe

    signal.pthread_sigmask(signal.SIG_UNBLOCK, blocked)  # a probe stops on a signal at once
    try:
        return probe(args, os.environ, sys.stdout, sys.stderr)
    except GracefulError as exc:
        _speak.usage_error(str(exc))
        return exc.exit_code


def _options_end(args: list[str]) -> int:
    for i, word in enumerate(args):
        if word == "--" or not word.startswith("-"):
            return i
    return len(args)


def script() -> None:
    """The ``graceful`` console script: blocks the stop signals first, and turns the
    collector off until the app's import, as ``__main__`` does."""
    import gc

    gc.disable()
    stop = frozenset({signal.SIGTERM, signal.SIGINT})
    inherited = signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    sys.exit(main(blocked=stop, inherited=frozenset(inherited)))
