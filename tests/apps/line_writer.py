"""The lines of the output test: about MEGABYTES MB of numbered lines per writer.

Line i of writer w is ``w{w} {i} {payload}``: the payload's length varies from 20 to
about 1,200 bytes and every 97th line is 150,000 bytes long (longer than one read of
the output pump), so lines cross every chunk boundary. Every 50th line goes to
stderr. The test writes them to files beforehand and the supervised writers are
``cat``: the measurement is then about the handling of the output, not about 20
Python programs generating it on a 2-core machine.
"""

from pathlib import Path


def expected(w: int, megabytes: int) -> list[str]:
    lines = []
    total = 0
    i = 0
    while total < megabytes * 1_000_000:
        size = 150_000 if i % 97 == 96 else 20 + (i * 7919) % 1200
        line = f"w{w} {i} " + chr(ord("a") + i % 26) * size
        lines.append(line)
        total += len(line) + 1
        i += 1
    return lines


def is_stderr(i: int) -> bool:
    return i % 50 == 49


def write_files(directory: Path, w: int, megabytes: int) -> None:
    """``w{w}.out`` and ``w{w}.err`` in ``directory``: what writer w prints on each stream."""
    lines = expected(w, megabytes)
    for suffix, err in (("out", False), ("err", True)):
        chosen = [line for i, line in enumerate(lines) if is_stderr(i) == err]
        (directory / f"w{w}.{suffix}").write_text("".join(f"{line}\n" for line in chosen))
