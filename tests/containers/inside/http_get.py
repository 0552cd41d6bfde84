"""Run inside a container: GET http://127.0.0.1:PORT/PATH, print the status and body.

The images have no curl. Prints ``STATUS BODY`` on one line (an HTTP error status
is an answer too); exits 1 with the reason when nothing answers.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request


def main() -> int:
    port, path = sys.argv[1], sys.argv[2]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    except OSError as error:
        print(f"no answer from 127.0.0.1:{port}{path}: {error}")
        return 1
    print(status, body.decode(errors="replace").strip())
    return 0


sys.exit(main())
