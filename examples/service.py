"""A service made of several processes, supervised from inside the app.

    python -m graceful --grace 10 examples.service:main      # PORT=8000 by default
    curl -s localhost:8000

The app opens the listening socket itself, then starts:

* ``feed``: a helper binary (here a shell loop standing in for a market-data
  handler) that the web workers need; it must count as started (running for
  ``min_uptime``) before they start;
* ``web-0`` and ``web-1``: two workers (``examples/workers.py``, each a graceful
  app of its own) serving the socket the app passes them.

On SIGTERM (or Ctrl-C) the app's shutdown sequence stops them in reverse order:
the web workers first (each gets SIGTERM, finishes its requests, runs its hooks,
and is SIGKILLed if still running after its ``stop_timeout`` of 5 s), then the
feed once both are gone (SIGKILL after 2 s). Everything ends within ``--grace``;
the summary line lists each exit code by name. A worker that crashes is started
again after a growing delay; a feed that keeps crashing fails the app's
readiness and, being essential, stops the app with exit code 1.
"""

from __future__ import annotations

import os
import socket
import sys

import graceful

FEED = "trap 'echo feed closing; exit 0' TERM; while :; do echo tick; sleep 5 & wait $!; done"


async def main() -> None:
    listener = socket.create_server(
        (os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8000")))
    )
    fd = listener.fileno()
    async with graceful.Supervisor() as sup:
        feed = sup.start(
            ["sh", "-c", FEED],
            name="feed",
            stop_timeout=2,
            min_uptime=0.5,
            essential=True,
            blocks_readiness=True,
        )
        for i in range(2):
            sup.start(
                [sys.executable, "-m", "graceful", "--grace", "6", "examples.workers:main"],
                name=f"web-{i}",
                env={"LISTEN_FD": str(fd), "GRACEFUL_WORKER_ID": str(i)},
                pass_fds=[fd],
                depends_on=[feed],
                stop_timeout=5,
                rolling_restart=True,  # kill -HUP: replaced one at a time
            )
        await graceful.wait_for_shutdown()
