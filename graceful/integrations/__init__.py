"""Run a web server under graceful, with its own signal handling switched off and
graceful's stop mapped to the server's own graceful shutdown.

One module per server, each importing its server only when used:
``graceful.integrations.uvicorn``, ``graceful.integrations.aiohttp``,
``graceful.integrations.hypercorn``. Each offers ``async def serve(...)`` to await
from ``main``; the server then:

- keeps serving through the drain delay (``/readyz`` already fails), answering
  with ``Connection: close`` so keep-alive clients move to another replica;
- stops accepting when the sequence starts, and finishes its in-flight requests
  within graceful's drain budget (the server's own drain timeout is set from it);
- runs its application's shutdown (ASGI lifespan, aiohttp's ``on_shutdown`` and
  ``on_cleanup``) before graceful's ``@on_shutdown`` hooks;
- closes its open WebSockets with 1012 when the sequence starts, and tells the
  streaming libraries that watch for a stop (sse-starlette);
- answers requests cut at the end of the budget with 503 (a response that has
  started gets no second one: its connection is closed) and counts them in the
  summary line ("cut N (requests N)"), which makes the exit code 1; work that runs
  after its response was sent counts as "background work".
"""
