"""The options of a run, checked before anything runs, into what every shard carries."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from aqueuepipe import RetryPolicy
from aqueuepipe.s3 import DEFAULT_PART_SIZE
from aqueuepipe.transfer import (
    DEFAULT_BATCH_CONCURRENCY,
    DEFAULT_CONCURRENCY,
    ProgressListener,
    build_options,
    check_prefixes,
    listed_prefix,
)

from ._manifest import manifest_target
from ._models import Job, ObjectOutcome

__all__ = [
    "DEFAULT_SHARD_OBJECTS",
    "DEFAULT_SHARD_RETRIES",
    "DEFAULT_WORKER_LIMIT",
    "CopyPrefixOptions",
    "Settings",
    "check_options",
]

#: Objects per Dask task when none is given.
DEFAULT_SHARD_OBJECTS = 1000
#: Bytes each worker process may buffer when no ``per_worker_limit`` is given.
DEFAULT_WORKER_LIMIT = 256 * 1024 * 1024
#: Times a shard whose task raised is run again (worker loss is counted apart).
DEFAULT_SHARD_RETRIES = 2


class CopyPrefixOptions(TypedDict, total=False):
    """The keyword options of :func:`copy_prefix` and :func:`copy_prefix_async`.

    All optional; :func:`copy_prefix` says what each means and its default.
    """

    shard_objects: int
    per_worker_limit: int
    concurrency: int
    part_size: int
    part_concurrency: int
    checksums: Iterable[str]
    checksum_algorithm: str | None
    manifest: str | os.PathLike[str] | None
    skip_existing: bool
    preserve_etags: bool
    server_side: bool
    max_shards_in_flight: int | None
    shard_retries: int
    endpoint_url: str | None
    retries: int | RetryPolicy | None
    worker_progress: ProgressListener | None
    on_outcome: Callable[[ObjectOutcome], None] | None


@dataclass(slots=True)
class Settings:
    """What a run needs besides its job, checked before any I/O."""

    job: Job
    shard_objects: int
    max_shards_in_flight: int | None
    shard_retries: int
    manifest: str | Path | None
    on_outcome: Callable[[ObjectOutcome], None] | None

    def in_flight_limit(self, threads: int) -> int:
        if self.max_shards_in_flight is not None:
            return self.max_shards_in_flight
        return max(2, 2 * threads)


def check_options(
    src_prefix: str,
    dst_prefix: str,
    *,
    shard_objects: int = DEFAULT_SHARD_OBJECTS,
    per_worker_limit: int = DEFAULT_WORKER_LIMIT,
    concurrency: int = DEFAULT_BATCH_CONCURRENCY,
    part_size: int = DEFAULT_PART_SIZE,
    part_concurrency: int = DEFAULT_CONCURRENCY,
    checksums: Iterable[str] = (),
    checksum_algorithm: str | None = None,
    manifest: str | os.PathLike[str] | None = None,
    skip_existing: bool = True,
    preserve_etags: bool = True,
    server_side: bool = True,
    max_shards_in_flight: int | None = None,
    shard_retries: int = DEFAULT_SHARD_RETRIES,
    endpoint_url: str | None = None,
    retries: int | RetryPolicy | None = None,
    worker_progress: ProgressListener | None = None,
    on_outcome: Callable[[ObjectOutcome], None] | None = None,
) -> Settings:
    src, dst = listed_prefix(src_prefix), listed_prefix(dst_prefix)
    check_prefixes(src, dst, one_endpoint=True)  # one client or endpoint for both
    _positive("shard_objects", shard_objects)
    _positive("concurrency", concurrency)
    if max_shards_in_flight is not None:
        _positive("max_shards_in_flight", max_shards_in_flight)
    if isinstance(shard_retries, bool) or not isinstance(shard_retries, int) or shard_retries < 0:
        raise ValueError(f"shard_retries must be 0 or more, got {shard_retries!r}")
    # Checked as copy_many checks them, which the workers hand them to.
    copies = build_options(
        limit=per_worker_limit,
        budget=None,
        part_size=part_size,
        part_concurrency=part_concurrency,
        checksums=checksums,
        checksum_algorithm=checksum_algorithm,
        progress=worker_progress,
        retries=retries,
        skip_existing=skip_existing,
        server_side=server_side,
    )
    job = Job(
        id=uuid.uuid4().hex,
        src_bucket=src.bucket,
        src_prefix=src.key,
        dst_bucket=dst.bucket,
        dst_prefix=dst.key,
        limit=copies.budget.limit,
        part_size=copies.part_size,
        concurrency=concurrency,
        part_concurrency=copies.part_concurrency,
        checksums=copies.checksums,
        checksum_algorithm=copies.checksum_algorithm,
        skip_existing=copies.skip_existing,
        preserve_etags=bool(preserve_etags),
        server_side=copies.server_side,
        endpoint_url=endpoint_url,
        policy=copies.policy,
        progress=worker_progress,
    )
    return Settings(
        job=job,
        shard_objects=shard_objects,
        max_shards_in_flight=max_shards_in_flight,
        shard_retries=shard_retries,
        manifest=manifest_target(manifest),
        on_outcome=on_outcome,
    )


def _positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
