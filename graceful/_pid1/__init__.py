"""The init (PID 1 or subreaper) and the process-tree walk.

Imported before the init forks the app, so neither this package nor its modules may
load ``typing``, ``dataclasses`` or ``asyncio`` (tests/test_layout.py checks it)."""
