"""Multipart upload limits and the choice of part size.

The numbers are Amazon S3's published limits; S3-compatible servers (moto, MinIO,
Ceph) enforce the same or looser ones.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_PART_SIZE",
    "MAX_OBJECT_SIZE",
    "MAX_PARTS",
    "MAX_PART_SIZE",
    "MIN_PART_SIZE",
    "STREAM_TIER_PARTS",
    "choose_part_size",
    "stream_part_size",
]

_MiB = 1024**2

MIN_PART_SIZE = 5 * _MiB
"""Smallest size of every part but the last of a multipart upload."""
MAX_PART_SIZE = 5 * 1024**3
"""Largest size of one part (5 GiB)."""
MAX_PARTS = 10_000
"""Most parts one multipart upload may have."""
MAX_OBJECT_SIZE = 5 * 1024**4
"""Largest object S3 stores (5 TiB)."""
DEFAULT_PART_SIZE = 8 * _MiB
"""Part size used unless the caller asks for another (the AWS CLI's default too)."""
STREAM_TIER_PARTS = 1000
"""Parts of a stream of unknown length at one size before the size doubles."""


def choose_part_size(object_size: int | None, part_size: int = DEFAULT_PART_SIZE) -> int:
    """Return the part size to upload an object of ``object_size`` bytes with.

    ``part_size`` is returned unchanged when ``ceil(object_size / part_size)`` is at
    most :data:`MAX_PARTS`, and when the size is unknown (``None``: the caller streams
    and must stop at ``MAX_PARTS * part_size`` bytes).  Otherwise it grows to the
    smallest multiple of 1 MiB that fits the object in :data:`MAX_PARTS` parts.

    Raises:
        ValueError: ``part_size`` is below :data:`MIN_PART_SIZE` or above
            :data:`MAX_PART_SIZE`, or ``object_size`` is negative or above
            :data:`MAX_OBJECT_SIZE`.
    """
    if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
        raise ValueError(
            f"part size {part_size} is out of range: S3 parts are "
            f"{MIN_PART_SIZE} bytes (5 MiB) to {MAX_PART_SIZE} bytes (5 GiB)"
        )
    if object_size is None:
        return part_size
    if object_size < 0:
        raise ValueError(f"object size {object_size} is negative")
    if object_size > MAX_OBJECT_SIZE:
        raise ValueError(
            f"object size {object_size} exceeds the S3 maximum of {MAX_OBJECT_SIZE} bytes (5 TiB)"
        )
    if -(-object_size // part_size) <= MAX_PARTS:
        return part_size
    smallest = -(-object_size // MAX_PARTS)
    # At most 525 MiB for a 5 TiB object, so always within MAX_PART_SIZE.
    return -(-smallest // _MiB) * _MiB


def stream_part_size(number: int, part_size: int, most: int) -> int:
    """The size of part ``number`` (from 1) of a stream of unknown length.

    ``part_size`` for the first :data:`STREAM_TIER_PARTS` parts, then twice that
    for as many more, and so on, but never more than ``most`` (what the memory
    limit lets one part hold) nor :data:`MAX_PART_SIZE`, and never less than
    ``part_size``.  A stream's length is known only at its end, so its parts grow
    with it: at 8 MiB, the 10,000 parts S3 allows hold 78 GiB at one size, and
    8 TiB (more than the largest object, 5 TiB) when parts may grow to 4 GiB.
    """
    tier = min((number - 1) // STREAM_TIER_PARTS, 32)
    return max(part_size, min(part_size << tier, most, MAX_PART_SIZE))
