"""The health server (``/livez``, ``/readyz``) on its own thread, the readiness state,
readiness checks, and the loop-lag and GIL watchers it answers from."""
