"""AsyncPipe: a bounded byte pipe between asyncio coroutines.

The pipe and its anyio ends (which name each other) are in :mod:`._async_pipe`;
the room its writes wait for in its budgets in :mod:`._room`; what its queue
carries, its states and its snapshot in :mod:`._items`.
"""

from ._async_pipe import AsyncPipe, PipeReceiveStream, PipeSendStream
from ._items import PipeStatistics

__all__ = ["AsyncPipe", "PipeReceiveStream", "PipeSendStream", "PipeStatistics"]
