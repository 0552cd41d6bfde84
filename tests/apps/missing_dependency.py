"""Imports a package that is not installed: the app's error, not a usage error."""

import graceful_test_no_such_dependency  # noqa: F401


async def main() -> None:
    pass
