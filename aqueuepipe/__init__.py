"""aqueuepipe: stream bytes between asyncio coroutines under a hard memory limit.

The public names are re-exported here; the modules that define them are private
unless documented otherwise.
"""

from .__about__ import __version__
from ._budget import BudgetLease, BudgetStatistics, ByteBudget
from ._errors import (
    AqueuepipeError,
    ChecksumMismatchError,
    NoSuchBucketError,
    NoSuchKeyError,
    ObjectChangedError,
    PipeAbortedError,
    PipeClosedError,
    PipeError,
    TransferError,
)
from ._open import ObjectReader, ObjectWriter, open_reader, open_writer
from ._pipe import AsyncPipe, PipeReceiveStream, PipeSendStream, PipeStatistics
from ._sync import sync
from .s3._retry import RetryPolicy
from .transfer import (
    CopyManyOptions,
    CopyOptions,
    ProgressCallback,
    ProgressListener,
    TransferResult,
    copy,
    copy_many,
)

__all__ = [
    # errors
    "AqueuepipeError",
    # streaming core
    "AsyncPipe",
    "BudgetLease",
    "BudgetStatistics",
    "ByteBudget",
    "ChecksumMismatchError",
    "CopyManyOptions",
    "CopyOptions",
    "NoSuchBucketError",
    "NoSuchKeyError",
    "ObjectChangedError",
    "ObjectReader",
    "ObjectWriter",
    "PipeAbortedError",
    "PipeClosedError",
    "PipeError",
    "PipeReceiveStream",
    "PipeSendStream",
    "PipeStatistics",
    "ProgressCallback",
    "ProgressListener",
    "RetryPolicy",
    "TransferError",
    "TransferResult",
    "__version__",
    "copy",
    "copy_many",
    "open_reader",
    "open_writer",
    "sync",
]
