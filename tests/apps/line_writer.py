"""Writes about MEGABYTES MB of numbered lines, in 1 MB writes that cut lines anywhere.

Line i of writer w is ``w{w} {i} {payload}``: the payload's length varies from 20 to
about 1,200 bytes and every 97th line is 150,000 bytes long (longer than one read of
the output pump), so lines cross every chunk boundary. Every 50th line goes to stderr.
``expected(w, megabytes)`` gives the same lines, for the test to compare.
"""

import sys


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


def main() -> None:
    w, megabytes = int(sys.argv[1]), int(sys.argv[2])
    out, err = bytearray(), bytearray()
    for i, line in enumerate(expected(w, megabytes)):
        (err if i % 50 == 49 else out).extend(line.encode() + b"\n")
    for stream, data in ((sys.stderr.buffer, err), (sys.stdout.buffer, out)):
        for start in range(0, len(data), 1_000_003):
            stream.write(data[start : start + 1_000_003])
            stream.flush()


if __name__ == "__main__":
    main()
