"""A hook that cannot be called with a ShutdownContext alone: refused when registered."""

import graceful


@graceful.on_shutdown
def flush(ctx: graceful.ShutdownContext, where: str) -> None:
    pass


async def main() -> None:
    pass
