"""Run inside a container: wait until http://127.0.0.1:PORT/PATH answers, at most
TIMEOUT seconds. Exits 0 at the first HTTP answer (any status), 1 at the timeout.

A server has no line to wait for when it logs only warnings; this is the bounded
poll that stands in for one.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request


def main() -> int:
    port, path, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    url = f"http://127.0.0.1:{port}{path}"
    end = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return 0
        except urllib.error.HTTPError:
            return 0
        except OSError as error:
            if time.monotonic() > end:
                print(f"no answer from {url} within {timeout} s: {error}")
                return 1
        time.sleep(0.05)


sys.exit(main())
