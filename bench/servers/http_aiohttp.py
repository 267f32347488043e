"""HTTP plaintext server: aiohttp.web (its C parser) serving one handler, on any asyncio loop.

Run: ``python http_aiohttp.py --loop treadle|asyncio|uvloop [HOST] PORT``.
Every request to ``/`` gets ``200 OK`` and ``Hello, World!`` (``text/plain``).
As with bench/servers/http_uvicorn.py, the loop is the one this program runs
aiohttp on (``asyncio.Runner`` with the loop's factory): the application is
started with ``AppRunner`` and ``SockSite`` on a socket made here, not with
``web.run_app``, which would make a loop of its own choosing.

Never: logs a request (the access log is off), or answers anything but 200 on ``/``.
"""

from __future__ import annotations

import asyncio

from _common import announce, listen, loop_factory, parse_args
from aiohttp import web

BODY = "Hello, World!"


async def hello(request: web.Request) -> web.Response:
    return web.Response(text=BODY)


async def main(host: str, port: int) -> None:
    sock = listen(host, port)
    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.SockSite(runner, sock, backlog=4096)
        await site.start()
        announce(sock)
        await asyncio.Event().wait()  # serves until SIGTERM ends the process
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    args = parse_args(__doc__, loops=True)
    with asyncio.Runner(loop_factory=loop_factory(args.loop)) as runner:
        runner.run(main(args.host, args.port))
