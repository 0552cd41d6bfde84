"""The small supervised program of ``benchmarks/bench_supervisor.py``: it reports its
pid on the benchmark's datagram socket, writes one line, and sleeps until stopped
(SIGTERM's default action ends it at once)."""

import os
import socket
import sys
import time

with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as report:
    report.sendto(str(os.getpid()).encode(), sys.argv[1])
print("worker up", flush=True)
time.sleep(1_000_000)
