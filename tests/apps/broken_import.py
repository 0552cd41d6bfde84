"""Registers a hook, then fails at import: the hook must still run."""

from _record import record

import graceful


@graceful.on_shutdown
def saved() -> None:
    record("hook saved")


raise RuntimeError("broken at import")
