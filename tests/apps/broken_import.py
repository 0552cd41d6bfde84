"""Registers hooks, then fails at import: main never starts, so only the always=True
hook runs."""

from _record import record

import graceful


@graceful.on_shutdown
def saved() -> None:
    record("hook saved")


@graceful.on_shutdown(always=True)
def cleanup() -> None:
    record("hook cleanup (always)")


raise RuntimeError("broken at import")
