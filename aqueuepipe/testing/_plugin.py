"""The pytest plugin of :mod:`aqueuepipe.testing`: ``s3_endpoint`` and ``s3_bucket``."""

from __future__ import annotations

import http.client
import os
import uuid
from collections.abc import Iterator

import pytest

from ._launcher import FAKE_CREDENTIALS, moto_server

__all__ = ["s3_bucket", "s3_endpoint"]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of a moto server process for the test session.

    For the session, the environment's ``AWS_*`` variables are replaced by fake
    credentials and no shared config or credentials file is read, so a client
    made without arguments can reach only this server's kind of endpoint.
    """
    saved = {name: value for name, value in os.environ.items() if name.startswith("AWS_")}
    for name in saved:
        del os.environ[name]
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.update({"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull})
    try:
        with moto_server() as server:
            yield server.endpoint_url
    finally:
        for name in [name for name in os.environ if name.startswith("AWS_")]:
            del os.environ[name]
        os.environ.update(saved)


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """A new, empty bucket on ``s3_endpoint`` (a fresh name for each test)."""
    name = f"test-{uuid.uuid4().hex}"
    host, _, port = s3_endpoint.removeprefix("http://").partition(":")
    connection = http.client.HTTPConnection(host, int(port or 80), timeout=10)
    try:
        connection.request("PUT", f"/{name}")  # moto's server takes unsigned requests
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"creating bucket {name} at {s3_endpoint} answered {response.status}")
    return name
