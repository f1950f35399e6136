"""``aqueuepipe`` commands in subprocesses, for the tests that signal them.

The ``start_command`` fixture (``conftest.py``) starts a :class:`Command` and kills it
at the end of the test if it still runs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from .faultproxy import MAX_STALL_SECONDS, Exchange, FaultProxy, Match

EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}
MESSAGE = {signal.SIGINT: "aqueuepipe: interrupted\n", signal.SIGTERM: "aqueuepipe: terminated\n"}
SIGNALS = pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
# Long enough that the copy is still held when the signal arrives; the proxy
# lets go of held requests when it closes at the end of the test.
HOLD_SECONDS = MAX_STALL_SECONDS
# Variables that would make rich draw progress bars or colours into the pipes.
_TERMINAL_VARIABLES = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "CLICOLOR_FORCE")


def arrival(operation: str) -> tuple[Match, asyncio.Event]:
    """A match for ``operation`` and an event set when the proxy receives one."""
    arrived = asyncio.Event()

    def seen(exchange: Exchange) -> bool:
        arrived.set()
        return True

    return Match(operation=operation, where=seen), arrived


def hold(
    proxy: FaultProxy, operation: str, seconds: float = HOLD_SECONDS, **how: Any
) -> asyncio.Event:
    """Have ``proxy`` stall every ``operation`` request for ``seconds`` (``how``: more
    :meth:`~tests.faultproxy.FaultProxy.stall` keywords); an event set when one arrives."""
    match, arrived = arrival(operation)
    proxy.stall(match, seconds=seconds, **how)
    return arrived


class Command:
    """``aqueuepipe ARGS`` in a subprocess whose S3 endpoint is ``endpoint_url``."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.stdout = ""
        self.stderr = ""

    @classmethod
    async def start(
        cls, *args: str, endpoint_url: str, stdin: int = asyncio.subprocess.DEVNULL
    ) -> Command:
        env = {k: v for k, v in os.environ.items() if k not in _TERMINAL_VARIABLES}
        env.pop("PYTHONASYNCIODEBUG", None)  # its log would be in the output compared
        env["AWS_ENDPOINT_URL"] = endpoint_url
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "aqueuepipe",
            *args,
            env=env,
            stdin=stdin,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def wait_for(self, arrived: asyncio.Event) -> None:
        """Wait until ``arrived`` is set; fail with the command's output if it exits first."""
        waiting = asyncio.ensure_future(arrived.wait())
        exiting = asyncio.ensure_future(self.process.wait())
        try:
            async with asyncio.timeout(60):
                await asyncio.wait((waiting, exiting), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
            exiting.cancel()
        if not arrived.is_set():
            await self.finish()
            pytest.fail(f"the command ended first ({self.process.returncode}): {self.stderr}")

    async def finish(self) -> int:
        async with asyncio.timeout(60):
            out, err = await self.process.communicate()
        self.stdout, self.stderr = out.decode(), err.decode()
        assert self.process.returncode is not None
        return self.process.returncode

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


StartCommand = Callable[..., Awaitable[Command]]
"""The ``start_command`` fixture: ``await start_command(*args, endpoint_url=..., stdin=...)``."""
