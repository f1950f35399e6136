"""The values every copy is built from: its options, validated, and its result.

One home for each decision.  The copy options are declared once, here, as
``TypedDict`` groups (:class:`CopyOptions` and the groups it is made of); ``copy``,
``copy_many``, ``open_reader``/``open_writer``, the command and the Dask layer take
them as ``**options: Unpack[...]``.  :func:`build_options` is the only validation of
them (types and values, before any I/O, naming the keyword as the caller spelled
it).  What every copy reports, :class:`~aqueuepipe._result.TransferResult`, is in
:mod:`aqueuepipe._result`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypedDict, Unpack

from . import _budget
from ._budget import ByteBudget
from ._metadata import ObjectOptions, ObjectSettings
from ._rate import RateLimit
from ._result import ProgressCallback, ProgressListener, TransferResult, as_listener
from .checksums import new_hasher, s3_algorithm
from .s3._client import ChecksumWhen, S3Client
from .s3._parts import DEFAULT_PART_SIZE, MAX_PART_SIZE, MIN_PART_SIZE
from .s3._retry import RetryPolicy, as_policy

__all__ = [
    "DEFAULT_BATCH_CONCURRENCY",
    "DEFAULT_CONCURRENCY",
    "BatchOptions",
    "ClientOptions",
    "ConnectionOptions",
    "CopyManyOptions",
    "CopyOptions",
    "IntegrityOptions",
    "MemoryOptions",
    "ObjectOptions",
    "Options",
    "PartOptions",
    "PrefixCopyOptions",
    "ProgressCallback",
    "ProgressListener",
    "ResumeOptions",
    "StreamOptions",
    "TransferResult",
    "Verify",
    "build_options",
    "check_names",
    "positive_int",
]

#: Parts in flight per copy when none is given.
DEFAULT_CONCURRENCY = 4
#: Copies running at once in :func:`copy_many` when none is given.
DEFAULT_BATCH_CONCURRENCY = 16

#: ``"required"``: a copy without evidence for each S3 end fails.
Verify = Literal["auto", "required"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """The options of a call, validated (see :func:`build_options`)."""

    part_size: int
    #: Parts in flight per copy.
    part_concurrency: int
    #: Copies at once (a batch; 1 for copy()).
    concurrency: int
    #: Expand prefix and directory sources (copy_many).
    recursive: bool
    checksums: tuple[str, ...]
    #: aqueuepipe's name ("sha256"...), "md5" for the MD5 path only, None: the default.
    checksum_algorithm: str | None
    verify: Verify
    #: Skip a copy whose destination already holds the source's object (see _skip).
    skip_existing: bool
    #: Metadata, storage class, encryption and tags of what the copies write.
    settings: ObjectSettings
    #: Let the server copy within one endpoint (CopyObject, UploadPartCopy).
    server_side: bool = True
    budget: ByteBudget
    progress: ProgressListener
    policy: RetryPolicy
    client: S3Client | None = None
    src_client: S3Client | None = None
    dst_client: S3Client | None = None
    endpoint_url: str | None = None
    checksum_when: ChecksumWhen = "when_required"
    #: The bandwidth cap of what the copies send and of what they receive (None: none).
    upload_rate: RateLimit | None = None
    download_rate: RateLimit | None = None
    #: Keep a journal of each multipart upload and continue it on the next run.
    resume: bool = False
    #: Where the journals are (None: the per-user cache folder, see _journal).
    journal_dir: Path | None = None

    def check_ends(
        self, *, src_is_s3: bool, dst_is_s3: bool, streamed: bool, src: str, dst: str
    ) -> None:
        """Refuse an option that cannot apply to these ends (it would be ignored).

        ``streamed``: one end is a stream (a pipe, standard input or output...).

        Raises:
            ValueError: naming the option and the end it cannot apply to.
        """
        if self.src_client is not None and not src_is_s3:
            raise ValueError(f"src_client applies to an s3:// source; {src!r} is not one")
        if self.dst_client is not None and not dst_is_s3:
            raise ValueError(f"dst_client applies to an s3:// destination; {dst!r} is not one")
        if self.skip_existing and streamed:
            raise ValueError(
                "skip_existing=True compares the destination with the source, which a "
                f"stream cannot be compared by: {src!r} to {dst!r}"
            )
        if self.resume and streamed:
            raise ValueError(
                "resume=True continues an upload from where it stopped, which needs a "
                "source that can be read again from any byte (a file or an s3:// object); "
                f"{src!r} to {dst!r} has a stream at one end"
            )
        self.settings.check_ends(src_is_s3=src_is_s3, dst_is_s3=dst_is_s3, src=src, dst=dst)


# The copy options, each declared once.  A group is the options that go together;
# each entry point takes the groups that apply to it (see CopyOptions' docstring
# and copy()'s for what each option means and its default).


class MemoryOptions(TypedDict, total=False):
    """The memory a call may hold: ``limit`` bytes, or a shared ``budget``; and its
    pace: ``max_rate`` bytes per second at most, on average, for all its copies
    together, in each direction (None: no cap)."""

    limit: int | None
    budget: ByteBudget | None
    max_rate: int | None


class PartOptions(TypedDict, total=False):
    """How a copy is cut: ``part_size`` (8 MiB, 5 MiB to 5 GiB) and ``part_concurrency``
    parts in flight per copy (4)."""

    part_size: int
    part_concurrency: int


class IntegrityOptions(TypedDict, total=False):
    """What a copy computes and checks: ``checksums`` (none), ``checksum_algorithm``
    (crc64nvme), ``verify`` ("auto"), and ``server_side`` (True) copies."""

    checksums: Iterable[str]
    checksum_algorithm: str | None
    verify: Verify
    server_side: bool


class ConnectionOptions(TypedDict, total=False):
    """Where and how requests go when this library makes the clients:
    ``endpoint_url`` and ``retries`` (retries per request after the first attempt,
    or a RetryPolicy)."""

    endpoint_url: str | None
    retries: int | RetryPolicy | None


class ClientOptions(TypedDict, total=False):
    """Clients given by the caller (``client``, or ``src_client`` and ``dst_client``),
    and ``checksum_when`` for the clients this library makes."""

    client: S3Client | None
    src_client: S3Client | None
    dst_client: S3Client | None
    checksum_when: ChecksumWhen


class ProgressOptions(TypedDict, total=False):
    """``progress``: a ProgressListener, or a callable (src, dst, done, total)."""

    progress: ProgressListener | ProgressCallback | None


class BatchOptions(TypedDict, total=False):
    """Of a batch: ``concurrency`` copies at once (16), ``skip_existing`` (False)."""

    concurrency: int
    skip_existing: bool


class StreamOptions(
    PartOptions,
    IntegrityOptions,
    ConnectionOptions,
    ClientOptions,
    ProgressOptions,
    ObjectOptions,
    total=False,
):
    """The options of one copy besides its memory: what ``open_reader`` passes on."""


class ResumeOptions(TypedDict, total=False):
    """``resume`` (False): a multipart upload to S3 (or a download) that fails or is
    interrupted is kept with a journal, and the same copy run again continues it;
    ``journal_dir``: where the journals are (the per-user cache folder)."""

    resume: bool
    journal_dir: str | os.PathLike[str] | None


class CopyOptions(MemoryOptions, StreamOptions, ResumeOptions, total=False):
    """The keyword options of one copy (:func:`~aqueuepipe.copy`, ``open_writer``)."""


class CopyManyOptions(CopyOptions, BatchOptions, total=False):
    """The keyword options of :func:`~aqueuepipe.copy_many`: one copy's, a batch's,
    and ``recursive`` (False)."""

    recursive: bool


class PrefixCopyOptions(
    PartOptions, IntegrityOptions, ConnectionOptions, BatchOptions, ResumeOptions, total=False
):
    """The options every copy of a prefix takes, on this machine or on a cluster:
    what ``copy_many`` and ``copy_prefix`` both accept, and the command gives both."""


def positive_int(name: str, value: object) -> int:
    """``value`` if it is an int of at least 1 (not a bool); else ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_names(call: str, given: Mapping[str, object], accepted: type) -> None:
    """Refuse a keyword ``call`` does not take (``**options`` accepts any at run time).

    ``accepted`` is the TypedDict of its options.

    Raises:
        TypeError: naming the keyword, as Python does for a signature.
    """
    known: frozenset[str] = accepted.__optional_keys__ | accepted.__required_keys__  # type: ignore[attr-defined]
    for name in given:
        if name not in known:
            raise TypeError(f"{call}() got an unexpected keyword argument {name!r}")


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return value


def _optional_str(name: str, value: object, example: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(
            f"{name} must be a str such as {example!r}, got {value!r} ({type(value).__name__})"
        )
    return value


def _algorithms(checksums: object) -> tuple[str, ...]:
    if isinstance(checksums, str):
        raise ValueError(
            f"checksums must be a collection of algorithm names, e.g. ({checksums!r},), "
            f"not the str {checksums!r}"
        )
    if isinstance(checksums, bytes) or not isinstance(checksums, Iterable):
        raise TypeError(
            f"checksums must be a collection of algorithm names such as ('sha256',), got "
            f"{checksums!r} ({type(checksums).__name__})"
        )
    names: list[str] = []
    for name in checksums:
        if not isinstance(name, str):
            raise TypeError(
                f"checksums must hold algorithm names (str), got {name!r} "
                f"({type(name).__name__}) in {checksums!r}"
            )
        names.append(new_hasher(name).name)
    return tuple(dict.fromkeys(names))


def _s3_checksum(algorithm: object) -> str | None:
    if algorithm is None:
        return None
    if not isinstance(algorithm, str):
        raise TypeError(
            f"checksum_algorithm must be an algorithm name such as 'crc64nvme', got "
            f"{algorithm!r} ({type(algorithm).__name__})"
        )
    name = new_hasher(algorithm).name
    if name != "md5":  # md5: Content-MD5 only, no flexible checksum
        s3_algorithm(name)
    return name


def _client(name: str, given: object) -> S3Client | None:
    if given is not None and not callable(getattr(given, "get_object", None)):
        raise TypeError(
            f"{name} must be an S3 client (aqueuepipe.s3.create_client, or aiobotocore's), "
            f"got {given!r} ({type(given).__name__})"
        )
    return given  # type: ignore[return-value]


def _budget_of(options: CopyManyOptions, part_size: int, part_concurrency: int) -> ByteBudget:
    budget, limit = options.get("budget"), options.get("limit")
    if budget is not None and not isinstance(budget, _budget.ByteBudget):
        raise TypeError(
            f"budget must be a ByteBudget shared by the copies (or pass limit=N bytes), "
            f"got {budget!r} ({type(budget).__name__})"
        )
    if budget is not None and limit is not None:
        raise ValueError("pass either limit or budget, not both")
    if budget is None:
        if limit is None:
            limit = part_size * (part_concurrency + 1)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive number of bytes, got {limit!r}")
        budget = ByteBudget(limit)
    if budget.limit < part_size:
        raise ValueError(
            f"the memory limit ({budget.limit} bytes) must hold at least one part "
            f"(part_size {part_size} bytes)"
        )
    return budget


def build_options(**options: Unpack[CopyManyOptions]) -> Options:
    """The one validation of a call's options, before any I/O.

    ``copy``, ``copy_many``, the command and the Dask driver and workers all build
    their options here; a keyword left out takes its default.

    Raises:
        TypeError: an option has the wrong type; ValueError: a wrong value.  The
            message names the keyword and the value given.
    """
    part_size = positive_int("part_size", options.get("part_size", DEFAULT_PART_SIZE))
    part_concurrency = positive_int(
        "part_concurrency", options.get("part_concurrency", DEFAULT_CONCURRENCY)
    )
    concurrency = positive_int("concurrency", options.get("concurrency", DEFAULT_BATCH_CONCURRENCY))
    if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
        raise ValueError(
            f"part_size must be between {MIN_PART_SIZE} bytes (5 MiB) and {MAX_PART_SIZE} "
            f"bytes (5 GiB), S3's limits for a part; got {part_size}"
        )
    verify = options.get("verify", "auto")
    if verify not in ("auto", "required"):
        raise ValueError(f"verify must be 'auto' or 'required', got {verify!r}")
    checksum_when = options.get("checksum_when", "when_required")
    if checksum_when not in ("when_supported", "when_required"):
        raise ValueError(
            f"checksum_when must be 'when_supported' or 'when_required', got {checksum_when!r}"
        )
    client = _client("client", options.get("client"))
    src_client = _client("src_client", options.get("src_client"))
    dst_client = _client("dst_client", options.get("dst_client"))
    if client is not None and (src_client is not None or dst_client is not None):
        raise ValueError("pass either client or src_client/dst_client, not both")
    return Options(
        part_size=part_size,
        part_concurrency=part_concurrency,
        concurrency=concurrency,
        recursive=_flag("recursive", options.get("recursive", False)),
        checksums=_algorithms(options.get("checksums", ())),
        checksum_algorithm=_s3_checksum(options.get("checksum_algorithm")),
        verify=verify,
        skip_existing=_flag("skip_existing", options.get("skip_existing", False)),
        settings=ObjectSettings.build(options),
        server_side=_flag("server_side", options.get("server_side", True)),
        budget=_budget_of(options, part_size, part_concurrency),
        progress=as_listener(options.get("progress")),
        policy=as_policy(options.get("retries")),
        client=client,
        src_client=src_client,
        dst_client=dst_client,
        endpoint_url=_optional_str(
            "endpoint_url", options.get("endpoint_url"), "http://127.0.0.1:9000"
        ),
        checksum_when=checksum_when,
        **_rates(options.get("max_rate")),
        resume=_flag("resume", options.get("resume", False)),
        journal_dir=_journal_dir(options.get("journal_dir")),
    )


def _journal_dir(value: object) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike) or isinstance(value, bytes):
        raise TypeError(
            f"journal_dir must be a directory path (str or os.PathLike), got {value!r} "
            f"({type(value).__name__})"
        )
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise ValueError(f"journal_dir must be a directory; {str(path)!r} is not one")
    return path


def _rates(max_rate: object) -> dict[str, RateLimit]:
    """One token bucket for each direction, shared by every copy of the call."""
    if max_rate is None:
        return {}
    if isinstance(max_rate, bool) or not isinstance(max_rate, int) or max_rate < 1:
        raise ValueError(
            f"max_rate must be a positive number of bytes per second, got {max_rate!r}"
        )
    return {"upload_rate": RateLimit(max_rate), "download_rate": RateLimit(max_rate)}
