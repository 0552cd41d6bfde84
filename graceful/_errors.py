"""Exceptions raised by graceful, and the exit codes the command line maps them to."""

from __future__ import annotations

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


# Shown as graceful.UsageError (where users import them from), not graceful._errors.
for _public in (GracefulError, UsageError, TargetError, NotRunningError):
    _public.__module__ = "graceful"


class ExitCall:
    """``sys.exit()`` called inside ``main``: its argument, kept apart from a return value."""

    __slots__ = ("code",)

    def __init__(self, code: object) -> None:
        self.code = code


def exit_code_of(value: object) -> int:
    """What ``sys.exit(value)`` would exit with (and print, for a message)."""
    if isinstance(value, (SystemExit, ExitCall)):
        value = value.code
    elif isinstance(value, BaseException):
        return value.exit_code if isinstance(value, GracefulError) else EXIT_FAILURE
    if value is None:
        return 0
    if isinstance(value, int):
        status = int(value) % 256  # what the kernel keeps of it, as for sys.exit()
        if status != value:
            import logging

            logging.getLogger("graceful").warning(
                "exit code %d is not an exit status (0 to 255): the process exits with %d"
                " (%d modulo 256), as sys.exit(%d) would. Use a code from 0 to 255",
                value,
                status,
                value,
                value,
            )
        return status
    from ._speak import write

    write(str(value))  # what sys.exit("message") prints
    return EXIT_FAILURE
