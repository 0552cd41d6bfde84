"""Run inside a container: GET http://127.0.0.1:PORT/PATH for each PATH given.

The images have no curl. Prints ``STATUS BODY`` on one line per path (an HTTP error
status is an answer too); exits 1 with the reason when nothing answers.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def main() -> int:
    port = sys.argv[1]
    for path in sys.argv[2:]:
        url = f"http://127.0.0.1:{port}{path}"
        try:
            status, body = get(url)
        except OSError as error:
            print(f"no answer from {url}: {error}")
            return 1
        print(status, body.decode(errors="replace").strip().replace("\n", " "))
    return 0


sys.exit(main())
