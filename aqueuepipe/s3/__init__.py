"""S3 building blocks: URLs, part sizes, clients and error translation."""

from aqueuepipe.s3._client import (
    DEFAULT_REGION,
    ChecksumWhen,
    S3Client,
    S3ClientMeta,
    S3Paginator,
    create_client,
    resolve_endpoint_url,
    resolve_region,
)
from aqueuepipe.s3._endpoints import (
    PROBE_SUFFIX,
    REMEMBERED_ENDPOINTS,
    forget_endpoints,
    is_amazon_s3,
    validates_digests,
)
from aqueuepipe.s3._parts import (
    DEFAULT_PART_SIZE,
    MAX_OBJECT_SIZE,
    MAX_PART_SIZE,
    MAX_PARTS,
    MIN_PART_SIZE,
    choose_part_size,
)
from aqueuepipe.s3._retry import RetryPolicy
from aqueuepipe.s3._translate import Side, is_missing_object, translate_error
from aqueuepipe.s3._uploads import OpenUpload, abort_upload, open_uploads
from aqueuepipe.s3._urls import (
    MAX_KEY_BYTES,
    Location,
    S3Url,
    is_s3_url,
    parse_location,
    parse_s3_url,
)

__all__ = [  # noqa: RUF022  (grouped by topic, as STYLE.md asks)
    # URLs and locations
    "MAX_KEY_BYTES",
    "Location",
    "S3Url",
    "is_s3_url",
    "parse_location",
    "parse_s3_url",
    # Multipart limits
    "DEFAULT_PART_SIZE",
    "MAX_OBJECT_SIZE",
    "MAX_PARTS",
    "MAX_PART_SIZE",
    "MIN_PART_SIZE",
    "choose_part_size",
    # Clients
    "DEFAULT_REGION",
    "ChecksumWhen",
    "S3Client",
    "S3ClientMeta",
    "S3Paginator",
    "create_client",
    "resolve_endpoint_url",
    "resolve_region",
    # What servers check
    "PROBE_SUFFIX",
    "REMEMBERED_ENDPOINTS",
    "forget_endpoints",
    "is_amazon_s3",
    "validates_digests",
    # Open multipart uploads
    "OpenUpload",
    "abort_upload",
    "open_uploads",
    # Errors and retries
    "RetryPolicy",
    "Side",
    "is_missing_object",
    "translate_error",
]
