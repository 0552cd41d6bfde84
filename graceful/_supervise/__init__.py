"""Supervised processes: the ``Supervisor``, one program's state machine
(``program``), a running process, its output, the restart backoff, and
``--workers``."""
