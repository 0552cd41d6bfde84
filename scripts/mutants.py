"""``make mutants``: break a promised behaviour on purpose, one mutation at a time, and
check that a test fails.

Each mutation in ``scripts/mutations.py`` names a file, a piece of its text (found
exactly once), what to put instead, the promise it breaks and the tests that must
catch it. Every mutation runs in one scratch copy of the tree (the original file is put
back after each), with ``PYTHONPATH`` pointing there, so the test processes the suite
starts (``python -m graceful ...``) run the mutated code too.

    python scripts/mutants.py [--only TEXT] [--list]

Exit code 0 when every mutation is caught (or marked equivalent, with the reason), 1
when one is missed or its text is no longer found (the code moved: update the list).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mutations import MUTATIONS, Mutation

ROOT = Path(__file__).resolve().parent.parent
IGNORED = shutil.ignore_patterns(
    ".git", ".venv*", ".containers", "__pycache__", ".mypy_cache", ".ruff_cache", "*.egg-info"
)
TEST_TIMEOUT = 900


def build_init(tree: Path) -> None:
    """Compile graceful-init in ``tree``, as setup.py does at install."""
    pid1 = tree / "graceful" / "_pid1"
    subprocess.run(
        ["cc", "-O2", "-std=gnu11", "-o", str(pid1 / "graceful-init"), str(pid1 / "init.c")],
        check=True,
    )


def run_one(scratch: Path, mutation: Mutation) -> tuple[str, float]:
    """``caught``, ``MISSED``, ``equivalent`` or ``STALE (...)``, and the seconds it took."""
    path = scratch / mutation.file
    original = path.read_text()
    found = original.count(mutation.old)
    if found != 1:
        return f"STALE (text found {found} times)", 0.0
    if mutation.equivalent:
        return "equivalent", 0.0
    path.write_text(original.replace(mutation.old, mutation.new))
    started = time.monotonic()
    try:
        if path.suffix == ".c":
            build_init(scratch)
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
             *mutation.tests],
            cwd=scratch,
            env={**os.environ, "PYTHONPATH": str(scratch), "PYTHONDONTWRITEBYTECODE": "1"},
            capture_output=True,
            text=True,
            timeout=TEST_TIMEOUT,
        )  # fmt: skip
        code = result.returncode
    except subprocess.TimeoutExpired:
        code = 1  # a hang is a failure the suite's own per-test timeout would report
    finally:
        path.write_text(original)
        if path.suffix == ".c":
            build_init(scratch)
    took = time.monotonic() - started
    if code in (4, 5):  # usage error, or no test collected: the list names wrong tests
        return f"STALE (pytest exit {code}: check the test names)", took
    return ("caught" if code != 0 else "MISSED"), took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="run the mutations whose text has this")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    args = parser.parse_args(argv)
    chosen = [
        m for m in MUTATIONS if args.only.lower() in f"{m.file} {m.promise} {m.old} {m.new}".lower()
    ]
    if args.list:
        for m in chosen:
            print(f"{m.file}: {m.promise}")
        return 0
    if not chosen:
        parser.error(f"no mutation matches {args.only!r}")
    scratch = Path(tempfile.mkdtemp(prefix="graceful-mutants-"))
    try:
        shutil.copytree(ROOT, scratch, dirs_exist_ok=True, ignore=IGNORED)
        results = []
        for n, mutation in enumerate(chosen, 1):
            outcome, took = run_one(scratch, mutation)
            results.append((mutation, outcome))
            print(f"[{n}/{len(chosen)}] {outcome:<9} {took:5.1f} s  {mutation.file}: {mutation.promise}",
                  flush=True)  # fmt: skip
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    caught = sum(outcome == "caught" for _m, outcome in results)
    equivalent = sum(outcome == "equivalent" for _m, outcome in results)
    bad = [(m, o) for m, o in results if o not in ("caught", "equivalent")]
    print(
        f"\n{caught} caught, {equivalent} equivalent, {len(bad)} missed or stale, of {len(results)}"
    )
    for mutation, outcome in bad:
        print(f"  {outcome}: {mutation.file}: {mutation.promise}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
