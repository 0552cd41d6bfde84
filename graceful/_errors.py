"""Exceptions raised by graceful, and the exit codes the command line maps them to."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1  # the app failed, a hook failed or timed out, or the deadline was hit
EXIT_USAGE = 2  # bad options, or a MODULE:ATTR that cannot be found
EXIT_FORCED = 130  # a second SIGINT forced an immediate exit (128 + SIGINT)


class GracefulError(Exception):
    """Base class of every error graceful raises on purpose."""

    exit_code = EXIT_FAILURE


class UsageError(GracefulError):
    """Raised when an option, an environment variable or an argument of ``run()`` is invalid.

    The message names the bad value and how to fix it; the command line prints it
    on one line and exits with code 2.
    """

    exit_code = EXIT_USAGE


class TargetError(UsageError):
    """Raised when ``MODULE:ATTR`` is malformed, or names a module or attribute that
    does not exist or is not callable. The command line exits with code 2."""


class NotRunningError(GracefulError):
    """Raised by ``request_shutdown()`` and ``wait_for_shutdown()`` when no
    ``graceful.run()`` (or ``python -m graceful``) is running in this process."""
