"""The service on a real server: uvicorn on a free loopback port, for what only a server
does (its own logging, real sockets)."""

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NamedTuple

import anyio
import uvicorn
from fastapi import FastAPI

#: How long the server may take to start or to stop.
WAIT_SECONDS = 5.0


class Server(NamedTuple):
    app: FastAPI
    url: str


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[Server]:
    """Run `app` under uvicorn on a free loopback port, at `http://127.0.0.1:<port>`."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    host, port = listener.getsockname()
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on"))
    stopped = anyio.Event()

    async def run() -> None:
        try:
            await server.serve([listener])
        finally:
            stopped.set()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(run)
        try:
            with anyio.fail_after(WAIT_SECONDS):
                while not server.started:
                    assert not stopped.is_set(), "the server did not start"
                    await anyio.sleep(0.01)
            yield Server(app, f"http://{host}:{port}")
        finally:
            server.should_exit = True
            with anyio.move_on_after(WAIT_SECONDS):
                await stopped.wait()
            tasks.cancel_scope.cancel()
