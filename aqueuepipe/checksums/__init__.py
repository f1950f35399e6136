"""Streaming checksums in the forms S3 uses.

A :class:`Hasher` computes one algorithm incrementally; :class:`StreamHashes`
computes several at once over a stream and can hash large chunks in a worker
thread so the event loop keeps streaming.  The remaining functions build the
values S3 reports for an object: the ETag of a single or multipart upload, and
the ``COMPOSITE`` and ``FULL_OBJECT`` checksums of a multipart upload.

Digests are raw bytes; :meth:`Hasher.hexdigest` gives lowercase hex and
:meth:`Hasher.b64digest` the base64 form of S3's ``Content-MD5`` and
``x-amz-checksum-*`` headers.  A CRC's digest is its value as a big-endian
unsigned integer of 4 bytes (crc32, crc32c) or 8 bytes (crc64nvme), as S3 encodes it.
"""

from __future__ import annotations

# The hash functions stay reachable here for the tests and benchmarks that count
# the bytes each one is given (they replace entries of these dicts in place).
from ._algorithms import _CRC_FUNCTIONS as _CRC_FUNCTIONS
from ._algorithms import _HASHLIB_CONSTRUCTORS as _HASHLIB_CONSTRUCTORS
from ._algorithms import (
    ALGORITHMS,
    CRC_ALGORITHMS,
    combine_crc,
    crc,
    crc_digest,
    s3_algorithm,
)
from ._algorithms import Buffer as Buffer  # the type of the data hashed
from ._forms import (
    ETagEvidence,
    StoredChecksum,
    composite_checksum,
    etag_evidence,
    etag_is_md5_based,
    multipart_etag,
    normalize_etag,
    single_etag,
    stored_checksum,
)
from ._hasher import OFFLOAD_THRESHOLD, Hasher, StreamHashes, new_hasher

__all__ = [
    "ALGORITHMS",
    "CRC_ALGORITHMS",
    "OFFLOAD_THRESHOLD",
    "ETagEvidence",
    "Hasher",
    "StoredChecksum",
    "StreamHashes",
    "combine_crc",
    "composite_checksum",
    "crc",
    "crc_digest",
    "etag_evidence",
    "etag_is_md5_based",
    "multipart_etag",
    "new_hasher",
    "normalize_etag",
    "s3_algorithm",
    "single_etag",
    "stored_checksum",
]
