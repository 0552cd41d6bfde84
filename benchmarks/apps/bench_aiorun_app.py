"""The idle service under aiorun: ``python bench_aiorun_app.py {asyncio,uvloop}``.

aiorun's idiomatic use: hand it the ``main()`` coroutine; on SIGTERM it stops the
loop, cancels every task (main included) and shuts its executor down.
"""

from __future__ import annotations

import sys

import aiorun
from bench_app import main, save_state

if __name__ == "__main__":
    use_uvloop = sys.argv[1:] == ["uvloop"]
    aiorun.run(
        main(),
        stop_on_unhandled_errors=True,
        use_uvloop=use_uvloop,
        shutdown_callback=lambda loop: save_state(),
    )
