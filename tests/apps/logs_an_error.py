"""A graceful app that logs one error through graceful's logger and returns."""

import logging


async def main() -> None:
    logging.getLogger("graceful").error("the kid's own error")
