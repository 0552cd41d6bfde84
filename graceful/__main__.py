"""``python -m graceful``.

The stop signals are blocked before anything else is imported: a SIGTERM that
arrives while the interpreter and asyncio load stays pending instead of killing
the process, and is delivered to graceful's handler once it is installed.

The garbage collector is off until just before the app is imported: graceful's start
(asyncio, the standard library, graceful) makes little garbage and many objects, and
the collections they set off cost about 2.5 ms of every start.
"""

import gc

gc.disable()  # until the app's import: see graceful/_core/runtime.execute

import signal  # noqa: E402

_STOP = frozenset({signal.SIGTERM, signal.SIGINT})
_INHERITED = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP)  # handed on to -- COMMAND

from graceful._cli import main  # noqa: E402  (after the signals are blocked, on purpose)

raise SystemExit(main(blocked=_STOP, inherited=frozenset(_INHERITED)))
