"""Bad input: exit code 2 and one line that names the problem and the fix."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import graceful

from .conftest import APPS, assert_usage_error, minimal_env


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "graceful", *args],
        cwd=APPS,
        env={**minimal_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["no_such_module_here:main"], {}, "no module named 'no_such_module_here'"),
        (["no_such_pkg.sub:main"], {}, "no module named 'no_such_pkg.sub'"),
        (["idle:nothere"], {}, "module 'idle' has no attribute 'nothere'"),
        (["idle:not_callable"], {}, "idle:not_callable is an int, not a function"),
        (["idle:mian"], {}, "module 'idle' has no attribute 'mian' (did you mean 'main'?)"),
        (
            ["idle.main"],
            {},
            "'idle.main' is not MODULE:ATTR; name an async function, e.g. idle:main",
        ),
        (["idle"], {}, "e.g. idle:main"),
        (
            ["idle.py:main"],
            {},
            "'idle.py:main' names a file; drop the .py and name the module: idle:main",
        ),
        (["drain:ClassMain"], {}, "drain:ClassMain is a class, not a function"),
        (["idle"], {}, "'idle' is not MODULE:ATTR"),
        (["idle:"], {}, "'idle:' is not MODULE:ATTR"),
        ([":main"], {}, "':main' is not MODULE:ATTR"),
        (["idle:ma-in"], {}, "'idle:ma-in' is not MODULE:ATTR"),
        ([], {}, "missing MODULE:ATTR"),
        (["--grace", "abc", "idle:main"], {}, "--grace must be a number of seconds, got 'abc'"),
        (["--grace", "-1", "idle:main"], {}, "got '-1'; use e.g. --grace 10"),
        (["--grace=0", "idle:main"], {}, "--grace must be between 0.5 and 604800 seconds"),
        (["--grace", "1e10", "idle:main"], {}, "--grace must be between 0.5 and 604800 seconds"),
        (["idle:main"], {"GRACEFUL_GRACE": "0.001"}, "GRACEFUL_GRACE must be between 0.5"),
        (["--drain-delay", "-1", "idle:main"], {}, "--drain-delay must be between 0 and"),
        (["--drain-delay", "6", "idle:main"], {}, "--drain-delay 6 s leaves less than half"),
        (["--health-port", "70000", "idle:main"], {}, "--health-port must be a port number"),
        (["idle:main"], {"GRACEFUL_TASK_ERRORS": "crash"}, "GRACEFUL_TASK_ERRORS must be one"),
        (["--readiness", "later", "idle:main"], {}, "--readiness must be one of auto, manual"),
        (["--liveness-max-lag", "0", "idle:main"], {}, "--liveness-max-lag must be between"),
        (["--grace"], {}, "--grace needs a value"),
        (["idle:main"], {"GRACEFUL_GRACE": "soon"}, "GRACEFUL_GRACE must be a number"),
        (["--loop", "tokio", "idle:main"], {}, "--loop must be one of auto, asyncio, uvloop"),
        (["idle:main"], {"GRACEFUL_LOOP": "x"}, "GRACEFUL_LOOP must be one of"),
        (["--log-level", "loud", "idle:main"], {}, "--log-level must be one of DEBUG"),
        (["--bogus", "idle:main"], {}, "unknown option '--bogus'"),
        (["--workers", "-1", "idle:main"], {}, "--workers must be a whole number from 0 to 1024"),
        (["idle:main"], {"GRACEFUL_WORKERS": "many"}, "GRACEFUL_WORKERS must be a whole number"),
        (["--workers", "2", "--", "true"], {}, "--workers runs copies of MODULE:ATTR, not of --"),
        (["--health-port", "8081", "--", "true"], {}, "--health-port applies to a graceful app"),
        (["--drain-delay", "1", "--", "true"], {}, "--drain-delay applies to a graceful app"),
        (["--readiness", "manual", "--", "true"], {}, "not to -- COMMAND; drop it"),
        (["bad_targets:async_generator"], {}, "is an async generator function (it has a yield)"),
        (["bad_targets:generator"], {}, "bad_targets:generator is a generator function"),
        (["bad_targets:needs_an_argument"], {}, "needs the argument(s) port, but main is called"),
        (["bad_targets:needs_a_keyword"], {}, "needs the argument(s) port"),
        (["--stop-signal", "SIGKILL", "idle:main"], {}, "--stop-signal cannot use SIGKILL"),
        (["--stop-signal", "QUIT,CHLD", "idle:main"], {}, "--stop-signal cannot use SIGCHLD"),
        (["--stop-signal", "99", "idle:main"], {}, "--stop-signal must name signals such as"),
        (["idle:main"], {"GRACEFUL_STOP_SIGNAL": "soon"}, "got 'soon'; use e.g. GRACEFUL_STOP"),
        (["--workers", "2", "--stop-signal", "hup", "idle:main"], {}, "drop SIGHUP from"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(
    args: list[str], env: dict[str, str], message: str
) -> None:
    result = run_cli(*args, env=env)
    assert_usage_error(result, message)


def test_flags_win_over_environment() -> None:
    # GRACEFUL_GRACE is bad, but the flag overrides it: the run goes on to the target.
    result = run_cli(
        "--grace", "2", "idle:returns_seven", env={"GRACEFUL_GRACE": "bad", "OUT": "/tmp"}
    )
    assert result.returncode == 7, result.stderr


def test_environment_is_used_without_flags() -> None:
    result = run_cli("idle:returns_seven", env={"GRACEFUL_LOG_LEVEL": "warning", "OUT": "/tmp"})
    assert result.returncode == 7
    assert "phase" not in result.stderr  # INFO lines are off
    result = run_cli("idle:returns_seven", env={"GRACEFUL_LOG_LEVEL": "debug", "OUT": "/tmp"})
    assert "phase 4/6" in result.stderr


def test_help_and_version() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "usage: python -m graceful" in result.stdout
    for option in ("--grace", "--loop", "--log-level", "GRACEFUL_GRACE", "--workers N"):
        assert option in result.stdout
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout == f"graceful {graceful.__version__}\n"


def test_console_script_runs_the_same_cli() -> None:
    script = shutil.which("graceful", path=str(Path(sys.executable).parent))
    assert script is not None, "the graceful console script is not installed"
    result = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=30)
    assert result.stdout == f"graceful {graceful.__version__}\n"


def test_a_mistake_in_the_apps_import_shows_the_apps_lines_not_gracefuls() -> None:
    result = run_cli("bad_hook:main")
    assert result.returncode == 2  # a UsageError of graceful's API: bad usage
    assert "hook 'flush' needs 2 arguments (ctx, where); a hook takes none, or one" in (
        result.stderr
    )
    # The decorator's line (Python 3.11+) or the def's (3.10): the app's own code.
    assert re.search(r'bad_hook\.py", line [67], in <module>', result.stderr), result.stderr
    assert "graceful/_" not in result.stderr and "<frozen" not in result.stderr
    assert "graceful.UsageError: hook 'flush'" in result.stderr


@pytest.mark.skipif(sys.version_info < (3, 11), reason="python -P is new in Python 3.11")
def test_under_python_P_the_standard_library_comes_before_the_apps_directory(
    tmp_path: Path,
) -> None:
    (tmp_path / "decimal.py").write_text("raise SystemExit('the local decimal.py was imported')\n")
    (tmp_path / "app.py").write_text(
        "import decimal\n\n\nasync def main() -> None:\n    print(decimal.Decimal('1.5'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-P", "-m", "graceful", "app:main"],
        cwd=tmp_path, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1.5\n"


def test_a_file_path_as_target_gets_a_hint_that_works_from_here(tmp_path: Path) -> None:
    here = run_cli("./idle.py:main")
    assert "names a file; drop the .py and name the module: idle:main" in here.stderr
    far = run_cli("/etc/nothing.py:main")
    assert "run it from its directory: cd /etc && python -m graceful nothing:main" in far.stderr
