"""The idle service under graceful: ``python -m graceful bench_graceful_app:main``,
with ``save_state`` as its one ``@on_shutdown`` hook."""

from __future__ import annotations

from bench_app import main, save_state

import graceful

graceful.on_shutdown(save_state)

__all__ = ["main"]
