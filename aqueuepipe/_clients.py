"""The S3 clients of one call, and the one policy that sizes them.

``copy``, ``copy_many`` and the Dask workers get their clients here.  Clients the
caller passed are used as they are; a side without one gets a client made from
the environment (or ``endpoint_url``), sized for the call, made the first time
that side is needed and closed with the pool.

Sizing: an open GetObject body holds one pooled connection for the whole copy,
and each part in flight one more.  A pool that serves both sides of copies (one
``client``, or the single client ``copy`` makes for a copy within one endpoint)
therefore lets at most ``size - 1`` bodies be open at once (:meth:`ClientPool.
body_slot`), so the part uploads always find a connection and copies never wait
for each other forever.  ``copy_many`` makes separate reading and writing clients,
so its bodies never compete with its parts.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, MutableMapping
from typing import Literal

from ._errors import Side
from ._options import Options
from .s3._client import S3Client, create_client

__all__ = ["ClientPool"]

# Body slots of clients the caller passed, which several calls may share: keyed by
# the client, so that every call using it sees the same slots.  Clients a pool
# makes keep theirs in the pool.
_SHARED_SLOTS: weakref.WeakKeyDictionary[object, asyncio.Semaphore] = weakref.WeakKeyDictionary()

Shape = Literal["one", "batch"]


def _pool_size(client: S3Client) -> int:
    config = getattr(client.meta, "config", None)
    return int(getattr(config, "max_pool_connections", None) or 10)


class ClientPool:
    """The clients of one call; an async context manager that closes what it made.

    ``options.concurrency`` copies run at once (one for ``shape`` ``"one"``) with
    ``options.part_concurrency`` parts each.  ``shape`` ``"one"`` (a single copy)
    makes one client for both sides of an S3-to-S3 copy; ``"batch"`` makes a
    reading and a writing client.
    """

    def __init__(self, options: Options, *, shape: Shape = "batch") -> None:
        copies = 1 if shape == "one" else options.concurrency
        part_concurrency = options.part_concurrency
        self._given: dict[Side, S3Client | None] = {
            "source": options.src_client or options.client,
            "destination": options.dst_client or options.client,
        }
        self._endpoint_url = options.endpoint_url
        self._checksum_when = options.checksum_when
        self._policy = options.policy
        self._shape = shape
        uploads = copies * part_concurrency
        if shape == "one":
            self._sizes: dict[Side, int] = {"source": 2, "destination": part_concurrency + 2}
        else:
            self._sizes = {"source": copies + 1, "destination": uploads + 1}
        self._made: dict[str, asyncio.Task[S3Client]] = {}
        #: Endpoints that answered NotImplemented to a server-side copy: the copies
        #: of this call stream without asking them again.
        self.server_side_refused: set[str] = set()
        self._slots: dict[object, asyncio.Semaphore] = {}
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> ClientPool:
        await self._stack.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.__aexit__(*exc_info)  # type: ignore[arg-type]

    async def get(self, side: Side, *, both: bool = False) -> S3Client:
        """The client for ``side``; ``both``: the copy is S3 to S3 (shape "one" then
        makes one client for both sides)."""
        given = self._given[side]
        if given is not None:
            return given
        name: str = side
        size = self._sizes[side]
        if (
            self._shape == "one"
            and both
            and self._given["source"] is None
            and (self._given["destination"] is None)
        ):
            name, size = "both", self._sizes["destination"]
        if name not in self._made:
            self._made[name] = asyncio.ensure_future(self._make(size))
        return await asyncio.shield(self._made[name])

    def one_account(self, src: S3Client, dst: S3Client) -> bool:
        """Whether ``src`` and ``dst`` reach one endpoint with one set of credentials:
        the same client, or two this pool made from one environment."""
        if src is dst:
            return True
        made = self._given["source"] is None and self._given["destination"] is None
        return made and src.meta.endpoint_url == dst.meta.endpoint_url

    async def _make(self, size: int) -> S3Client:
        return await self._stack.enter_async_context(
            create_client(
                endpoint_url=self._endpoint_url,
                max_pool_connections=size,
                checksum_when=self._checksum_when,
                max_attempts=self._policy.attempts,
                read_timeout=self._policy.read_timeout,
                connect_timeout=self._policy.connect_timeout,
            )
        )

    @contextlib.asynccontextmanager
    async def body_slot(self, src: S3Client, dst: S3Client | None) -> AsyncIterator[None]:
        """Hold, while a body of ``src`` is open, one of the pool's body slots.

        Only a client that also uploads (``src is dst``) needs one; its slots are
        ``pool size - 1``, shared by every call using the client.
        """
        if src is not dst:
            yield
            return
        given = any(src is client for client in self._given.values())
        registry: MutableMapping[object, asyncio.Semaphore] = (
            _SHARED_SLOTS if given else self._slots
        )
        slots = registry.get(src)
        if slots is None:
            slots = registry[src] = asyncio.Semaphore(max(1, _pool_size(src) - 1))
        async with slots:
            yield
