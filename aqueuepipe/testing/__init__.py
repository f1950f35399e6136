"""Test code that uses aqueuepipe against a real S3 server: moto in its own process.

::

    from aqueuepipe.testing import moto_server

    with moto_server() as server:              # a free loopback port, stopped at exit
        await copy("a.bin", f"s3://bucket/a.bin", endpoint_url=server.endpoint_url)
        server.requests().counts["UploadPart"]  # counted where the requests arrive

As a pytest plugin (``-p aqueuepipe.testing`` on the command line, or
``pytest_plugins = ["aqueuepipe.testing"]`` in a ``conftest.py``) it gives the
fixtures ``s3_endpoint`` (one server for the session; its URL, with fake
credentials in the environment so no test can reach real AWS) and ``s3_bucket``
(a bucket with a fresh name, per test).

``moto_server(validate_digests=True)`` refuses a body that disagrees with its
``Content-MD5`` or ``x-amz-checksum-*`` header with ``400 BadDigest``, as Amazon S3
does; plain moto stores it.  Needs the ``test`` extra (``moto[server]``).
"""

from __future__ import annotations

from ._launcher import FAKE_CREDENTIALS, MotoServer, RequestCounts, moto_server
from ._server import s3_operation

__all__ = [
    "FAKE_CREDENTIALS",
    "MotoServer",
    "RequestCounts",
    "moto_server",
    "s3_bucket",
    "s3_endpoint",
    "s3_operation",
]

# The pytest plugin's fixtures, where pytest is installed (the demo needs only the server).
try:
    from ._plugin import s3_bucket, s3_endpoint
except ModuleNotFoundError as missing:  # pragma: no cover - pytest is in the test extra
    if missing.name != "pytest":
        raise
