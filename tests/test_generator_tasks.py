"""What a generator task may yield: every kind of awaitable, a bare ``yield``, and what is not awaitable.

``green/generators.drive`` takes anything with ``__await__`` at once and asks
``inspect.isawaitable`` about the rest (a ``types.coroutine`` generator has no
``__await__``); the loop's ``sock_*`` methods are compiled coroutines when the
core is compiled, which only the ABC check would otherwise recognise.
"""

from __future__ import annotations

import asyncio
import socket
import types
from collections.abc import Generator
from typing import Any

import pytest

import treadle


@types.coroutine
def _old_style(value: Any) -> Generator[Any, Any, Any]:
    """A generator-based coroutine: awaitable, but without ``__await__``."""
    yield  # one trip through the loop
    return value


async def _native(value: Any) -> Any:
    await asyncio.sleep(0)
    return value


class _CustomAwaitable:
    def __await__(self) -> Generator[Any, Any, str]:
        yield from asyncio.sleep(0).__await__()
        return "custom"


def test_a_generator_task_awaits_every_kind_of_awaitable() -> None:
    def gen(loop: asyncio.AbstractEventLoop, a: socket.socket, b: socket.socket) -> Any:
        got = [(yield _native("native"))]
        got.append((yield _old_style("old style")))
        got.append((yield _CustomAwaitable()))
        fut = loop.create_future()
        loop.call_soon(fut.set_result, "future")
        got.append((yield fut))
        got.append((yield treadle.spawn(lambda: "green")))
        yield loop.sock_sendall(a, b"socket")  # the loop's own coroutines (compiled or not)
        got.append((yield loop.sock_recv(b, 100)))
        yield  # a bare yield lets others run once
        return got

    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        with a, b:
            return await treadle.spawn(gen, loop, a, b)  # type: ignore[no-any-return]

    assert treadle.run(main()) == ["native", "old style", "custom", "future", "green", b"socket"]


def test_what_an_awaitable_raises_is_thrown_in_at_the_yield() -> None:
    async def failing() -> None:
        raise KeyError("inside")

    def gen() -> Any:
        with pytest.raises(KeyError, match="inside"):
            yield failing()
        with pytest.raises(TypeError, match="yield an awaitable"):
            yield "not awaitable"
        return "survived"

    assert treadle.run(gen) == "survived"
