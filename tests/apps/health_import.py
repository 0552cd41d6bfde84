"""Holds its own import until a line arrives on stdin, with the health server already up."""

import sys

from _record import ready

ready("importing")
sys.stdin.readline()


async def main() -> None:
    ready()
