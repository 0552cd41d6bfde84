"""The README's first example, copied from the README and run: its sample output is what
the code prints today (durations aside)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

from .conftest import poll_until

README = Path(__file__).parent.parent / "README.md"


def block_after(text: str, first_line: str) -> str:
    """The fenced block whose first line is ``first_line``."""
    match = re.search(r"```\w*\n(" + re.escape(first_line) + r"\n.*?)```", text, re.S)
    assert match, f"no block starting with {first_line!r} in the README"
    return match.group(1)


def normalized(line: str) -> str:
    line = re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ", "", line)  # the timestamp
    line = re.sub(r"\(\d+\.\d ms\)", "(N ms)", line)
    return re.sub(r"took \d+\.\d ms", "took N ms", line)


def test_the_first_example_prints_what_the_readme_shows(tmp_path: Path) -> None:
    text = README.read_text()
    (tmp_path / "myapp.py").write_text(block_after(text, "# myapp.py"))
    sample = block_after(text, "graceful INFO: SIGTERM received: shutting down within 10 s")
    app = subprocess.Popen(
        [sys.executable, "-m", "graceful", "--health-port", "0", "--health-host", "127.0.0.1", "myapp:main"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert app.stderr is not None
        listening = app.stderr.readline()  # the handshake: ready once main runs
        port = int(re.search(r":(\d+) ", listening).group(1))  # type: ignore[union-attr]
        import http.client

        def ready() -> bool:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                conn.request("GET", "/readyz")
                return conn.getresponse().status == 200
            except OSError:
                return False
            finally:
                conn.close()

        assert poll_until(ready, 20)
        app.send_signal(signal.SIGTERM)
        out, err = app.communicate(timeout=20)
    finally:
        if app.poll() is None:
            app.kill()
            app.communicate()
    assert app.returncode == 0
    assert out == "saving after SIGTERM; 9.5 s left\n"
    printed = {normalized(line) for line in err.splitlines()}
    for line in sample.splitlines():
        if line != "...":
            assert normalized(line) in printed, f"README shows {line!r}; printed:\n{err}"
