"""Things that cannot be a main, refused at start with one line (exit 2)."""

from collections.abc import AsyncIterator, Iterator


async def async_generator() -> AsyncIterator[int]:
    yield 1


def generator() -> Iterator[int]:
    yield 1


async def needs_an_argument(port: int) -> None:
    pass


async def needs_a_keyword(*, port: int) -> None:
    pass
