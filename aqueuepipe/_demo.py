"""``aqueuepipe demo``: copies through an S3 server started for it on this machine.

moto's S3 runs in a process of its own on a free loopback port
(:func:`aqueuepipe.testing.moto_server`), so the peak RSS growth the demo reports is
the copies' own.  The demo writes files of
pseudo-random bytes (the same on every run), hashing them as it goes, uploads
them to one bucket, copies them all at once to another under a 30 MB limit, and
checks the copies against the original bytes: MD5 and SHA-256 computed here with
hashlib, independently of aqueuepipe, and every copy read back and compared.  It
sets fake AWS credentials for the process while it runs and never talks to AWS.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import os
import random
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from rich.console import Console
from rich.table import Table

from ._budget import ByteBudget
from ._report import PeakGrowth, failure_message, printable
from ._units import format_size
from .progress import ProgressDisplay
from .s3._client import S3Client, create_client
from .testing import moto_server
from .transfer import TransferResult, copy_many

__all__ = ["DEMO_LIMIT", "DEMO_OBJECTS", "DemoUnavailableError", "run_demo"]

#: The objects the demo copies: (key, size in bytes).
DEMO_OBJECTS: Final[tuple[tuple[str, int], ...]] = (
    ("demo-1MB.bin", 1_000_000),
    ("demo-5MB.bin", 5_000_000),
    ("demo-20MB.bin", 20_000_000),
    ("demo-100MB.bin", 100_000_000),
)
#: The memory limit all the demo's copies share, in bytes.
DEMO_LIMIT: Final = 30_000_000

SOURCE_BUCKET: Final = "aqueuepipe-demo-source"
COPY_BUCKET: Final = "aqueuepipe-demo-copies"

_FAKE_AWS: Final[dict[str, str]] = {
    "AWS_ACCESS_KEY_ID": "aqueuepipe-demo",
    "AWS_SECRET_ACCESS_KEY": "aqueuepipe-demo",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Nothing of the user's AWS setup applies: no profiles, config or
    # credentials files, endpoints or instance metadata.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
_CHUNK: Final = 1 << 20


class DemoUnavailableError(Exception):
    """The demo cannot run here: moto's server is not installed."""


def run_demo(*, quiet: bool = False, console: Console | None = None) -> int:
    """Run the demo; return 0 when every copy verified, 1 otherwise.

    Prints the table on ``console`` (default: standard output) and progress bars
    on standard error when it is a terminal and ``quiet`` is false.

    Raises:
        DemoUnavailableError: moto's server (``moto[server]``) is not installed.
    """
    out = console if console is not None else Console()
    display = ProgressDisplay(enabled=False if quiet else None)
    with _fake_aws_environment(), _s3_server() as endpoint_url:
        out.print(f"S3 server (moto) running in its own process at {endpoint_url}")
        return asyncio.run(_demo(endpoint_url, out, display))


# -- the server ------------------------------------------------------------------


@contextlib.contextmanager
def _s3_server() -> Iterator[str]:
    """moto's S3 in a process of its own (:mod:`aqueuepipe.testing`): yields its URL.

    Raises:
        DemoUnavailableError: moto's server is not installed.
    """
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("werkzeug") is None:
        raise DemoUnavailableError(
            "it needs moto's S3 server; install it with `python3 -m pip install 'aqueuepipe[demo]'`"
        )
    with moto_server() as server:
        yield server.endpoint_url


@contextlib.contextmanager
def _fake_aws_environment() -> Iterator[None]:
    """Replace every ``AWS_*`` variable with fake credentials until the block ends."""
    saved = {name: value for name, value in os.environ.items() if name.startswith("AWS_")}
    for name in saved:
        del os.environ[name]
    os.environ.update(_FAKE_AWS)
    try:
        yield
    finally:
        for name in [name for name in os.environ if name.startswith("AWS_")]:
            del os.environ[name]
        os.environ.update(saved)


# -- the demo ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Source:
    key: str
    path: Path
    size: int
    md5: str
    sha256: str


@dataclass(frozen=True, slots=True)
class _Row:
    key: str
    result: TransferResult
    md5_ok: bool
    sha256_ok: bool
    read_back_ok: bool

    @property
    def ok(self) -> bool:
        return self.result.ok and self.md5_ok and self.sha256_ok and self.read_back_ok


def _write_source(directory: Path, key: str, size: int, seed: int) -> _Source:
    """Write ``size`` pseudo-random bytes (the same for a given seed) to a file, hashing them."""
    rng = random.Random(seed)
    md5 = hashlib.md5(usedforsecurity=False)
    sha256 = hashlib.sha256()
    path = directory / key
    with path.open("wb") as file:
        for offset in range(0, size, _CHUNK):
            chunk = rng.randbytes(min(_CHUNK, size - offset))
            md5.update(chunk)
            sha256.update(chunk)
            file.write(chunk)
    return _Source(key, path, size, md5.hexdigest(), sha256.hexdigest())


async def _demo(endpoint_url: str, out: Console, display: ProgressDisplay) -> int:
    with tempfile.TemporaryDirectory(prefix="aqueuepipe-demo-") as tmp:
        return await _demo_in(Path(tmp), endpoint_url, out, display)


async def _demo_in(tmp: Path, endpoint_url: str, out: Console, display: ProgressDisplay) -> int:
    # The source bytes live in files, not in this process: what its peak RSS
    # shows is the S3 server and the copies.
    sources = await asyncio.gather(
        *(
            asyncio.to_thread(_write_source, tmp, key, size, seed)
            for seed, (key, size) in enumerate(DEMO_OBJECTS)
        )
    )
    total = sum(source.size for source in sources)
    async with create_client(endpoint_url=endpoint_url) as client:
        for bucket in (SOURCE_BUCKET, COPY_BUCKET):
            await client.create_bucket(Bucket=bucket)
        started = time.perf_counter()
        uploads = [(str(s.path), f"s3://{SOURCE_BUCKET}/{s.key}") for s in sources]
        upload_batch = copy_many(uploads, limit=DEMO_LIMIT, checksums=(), client=client)
        async with contextlib.aclosing(upload_batch) as uploaded:
            async for result in uploaded:
                if result.error is not None:
                    out.print(
                        f"FAILED to upload {printable(result.src)}: "
                        f"{failure_message(result.error)}",
                        markup=False,
                        highlight=False,
                    )
                    return 1
        out.print(
            f"uploaded {len(sources)} objects ({format_size(total)}) to s3://{SOURCE_BUCKET} "
            f"in {time.perf_counter() - started:.1f} s; now copying them all at once to "
            f"s3://{COPY_BUCKET} under a {format_size(DEMO_LIMIT)} limit"
        )

        budget = ByteBudget(DEMO_LIMIT)
        pairs = [
            (dst, f"s3://{COPY_BUCKET}/{s.key}")
            for (_, dst), s in zip(uploads, sources, strict=True)
        ]
        results: dict[str, TransferResult] = {}
        growth = PeakGrowth()  # of this process, from here: the copies' memory
        started = time.perf_counter()
        with display:
            batch = copy_many(
                pairs,
                budget=budget,
                checksums=("md5", "sha256"),
                client=client,
                progress=display if display.enabled else None,
            )
            async with contextlib.aclosing(batch) as copies:
                async for result in copies:
                    results[result.src] = result
        elapsed = time.perf_counter() - started

        rows = []
        for source, (src, _) in zip(sources, pairs, strict=True):
            result = results[src]
            rows.append(
                _Row(
                    key=source.key,
                    result=result,
                    md5_ok=result.checksums.get("md5") == source.md5,
                    sha256_ok=result.checksums.get("sha256") == source.sha256,
                    read_back_ok=result.ok and await _reads_back(client, source),
                )
            )

    out.print(_table(rows))
    copied = sum(row.result.size for row in rows if row.result.ok)
    grown = growth.bytes()
    out.print(
        f"copied {format_size(copied)} in {elapsed:.1f} s ({copied / elapsed / 1e6:.1f} MB/s "
        "overall)"
    )
    out.print(
        f"memory: the copies grew this process's peak RSS by "
        f"{format_size(grown) if grown is not None else 'an unknown amount'} under the "
        f"{format_size(DEMO_LIMIT)} limit (the S3 server, which keeps every object in "
        "memory, runs in its own process)"
    )
    failed = [row for row in rows if not row.ok]
    for row in failed:
        why = failure_message(row.result.error) if row.result.error else "verification failed"
        out.print(f"FAILED: {row.key}: {why}", markup=False, highlight=False)
    if failed:
        return 1
    out.print(
        f"all {len(rows)} copies verified: MD5 and SHA-256 match the original bytes, "
        "and every copy reads back identical"
    )
    return 0


async def _reads_back(client: S3Client, source: _Source) -> bool:
    """Whether the copy of ``source`` holds exactly its bytes (compared as they stream)."""
    response = await client.get_object(Bucket=COPY_BUCKET, Key=source.key)
    offset = 0
    with source.path.open("rb") as expected:
        async with response["Body"] as body:
            while chunk := await body.read(_CHUNK):
                if await asyncio.to_thread(expected.read, len(chunk)) != chunk:
                    return False
                offset += len(chunk)
    return offset == source.size


def _table(rows: list[_Row]) -> Table:
    table = Table(title="aqueuepipe demo: copies verified against the original bytes")
    table.add_column("object")
    table.add_column("size", justify="right")
    table.add_column("parts", justify="right")
    table.add_column("MB/s", justify="right")
    table.add_column("md5")
    table.add_column("sha256")
    table.add_column("read back")

    def mark(ok: bool) -> str:
        return "[green]ok[/]" if ok else "[bold red]FAILED[/]"

    for row in rows:
        result = row.result
        table.add_row(
            row.key,
            format_size(result.size),
            (str(result.parts) if result.parts else "1 (PUT)") if result.ok else "-",
            f"{result.throughput / 1e6:.1f}" if result.ok else "-",
            mark(row.md5_ok),
            mark(row.sha256_ok),
            mark(row.read_back_ok),
        )
    return table
