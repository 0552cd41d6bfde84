"""The first example, copied from the README and from the documentation site's pages and
run: each sample output shown is what the code prints today (durations aside)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import poll_until

ROOT = Path(__file__).parent.parent
# page that shows the sample output -> page whose `# myapp.py` block printed it
SAMPLES = {
    "README.md": "README.md",
    "docs/getting-started.md": "docs/getting-started.md",
    "docs/stop-sequence.md": "docs/getting-started.md",
}


def block_after(text: str, first_line: str) -> str:
    """The fenced block whose first line is ``first_line``."""
    match = re.search(r"```\w*\n(" + re.escape(first_line) + r"\n.*?)```", text, re.S)
    assert match, f"no block starting with {first_line!r}"
    return match.group(1)


def normalized(line: str) -> str:
    line = re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ", "", line)  # the timestamp
    line = re.sub(r"\(\d+\.\d ms\)", "(N ms)", line)
    return re.sub(r"took \d+\.\d ms", "took N ms", line)


@pytest.mark.parametrize("page", sorted(SAMPLES))
def test_the_first_example_prints_what_the_page_shows(page: str, tmp_path: Path) -> None:
    example = block_after((ROOT / SAMPLES[page]).read_text(), "# myapp.py")
    (tmp_path / "myapp.py").write_text(example)
    sample = block_after(
        (ROOT / page).read_text(), "graceful INFO: SIGTERM received: shutting down within 10 s"
    )
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
            assert normalized(line) in printed, f"{page} shows {line!r}; printed:\n{err}"
