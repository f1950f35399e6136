"""A moto S3 server in its own process on a free loopback port, for the benchmarks.

The same approach as the test suite's fixture (``tests/conftest.py``), kept apart
so that benchmarks never import from the tests.  The server only ever listens on
127.0.0.1 and is given fake credentials; the environment the clients should run
with is :func:`client_environment`.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from _machine import process_cpu_seconds

# The library's launcher stops and reports a server the same way (one copy of it).
from aqueuepipe.testing._launcher import _stop, _tail

HOST = "127.0.0.1"

FAKE_CREDENTIALS: Mapping[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}

# Nothing outside the environment may configure botocore: no shared config or
# credentials files, no instance metadata lookups.
_ISOLATION: Mapping[str, str] = {
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}

# ``python -m moto.server`` less one header: werkzeug sends "Server: Werkzeug/..."
# and moto its own "Server: amazon.com"; aiohttp's strict parser (Python's dev
# mode, PYTHONASYNCIODEBUG) rejects a response with two Server headers.  ``{setup}``
# runs before the server starts (bench_distributed.py fills buckets there).
# (tests/_helpers.py has its own copy: benchmarks never import from the tests.)
_SERVER_MAIN = """
import sys
from moto import server
from moto.moto_server.werkzeug_app import MotoRequestHandler

def send_response(self, code, message=None):
    self.log_request(code)
    self.send_response_only(code, message)
    self.send_header("Date", self.date_time_string())

MotoRequestHandler.send_response = send_response
{setup}
server.main(sys.argv[1:])
"""

_STARTUP_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class MotoServer:
    """A moto server process listening on ``endpoint_url``."""

    endpoint_url: str
    port: int
    process: subprocess.Popen[bytes]

    def cpu_seconds(self) -> float | None:
        """User + system CPU the server process has used so far (Linux only)."""
        return process_cpu_seconds(self.process.pid)

    def boto3_client(self, *, max_pool_connections: int = 16) -> Any:
        """A boto3 S3 client of this server with the fake credentials, for set-up and checks."""
        return boto3_client(self.endpoint_url, max_pool_connections=max_pool_connections)


def boto3_client(endpoint_url: str, *, max_pool_connections: int = 16) -> Any:
    """A boto3 S3 client of ``endpoint_url`` with the fake credentials, for set-up and checks
    (of this module's servers or of ``aqueuepipe.testing.moto_server``'s)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=FAKE_CREDENTIALS["AWS_DEFAULT_REGION"],
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(max_pool_connections=max_pool_connections),
    )


def client_environment(
    endpoint_url: str | None, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``base`` (default ``os.environ``) with every ``AWS_*`` replaced by fakes and the endpoint.

    With ``endpoint_url`` None, no ``AWS_ENDPOINT_URL`` either.
    """
    env = {k: v for k, v in (base or os.environ).items() if not k.startswith("AWS_")}
    env.update(FAKE_CREDENTIALS)
    env.update(_ISOLATION)
    if endpoint_url is not None:
        env["AWS_ENDPOINT_URL"] = endpoint_url
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


def _answers(port: int) -> bool:
    connection = http.client.HTTPConnection(HOST, port, timeout=1.0)
    try:
        connection.request("GET", "/moto-api/")
        connection.getresponse().read()
    except OSError:
        return False
    finally:
        connection.close()
    return True


@contextlib.contextmanager
def moto_server(
    setup: str = "", *, startup_timeout: float = _STARTUP_TIMEOUT
) -> Iterator[MotoServer]:
    """Run ``python -m moto.server -H 127.0.0.1 -p PORT`` until the block exits.

    ``setup`` is Python source the server process runs first, with moto imported
    (say, to put objects straight into its backend).  Waits (at most
    ``startup_timeout`` seconds) until it answers HTTP; its log goes to a temporary
    file, quoted if it fails to start.
    """
    env = client_environment(None)
    script = _SERVER_MAIN.replace("{setup}", setup)
    with tempfile.TemporaryFile() as log:
        # Another process may take the port between _free_port() and the
        # server's bind; then the server exits at once and we try another.
        for _ in range(3):
            port = _free_port()
            process = subprocess.Popen(
                [sys.executable, "-c", script, "-H", HOST, "-p", str(port)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                deadline = time.monotonic() + startup_timeout
                while process.poll() is None and not _answers(port):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"moto server did not answer:\n{_tail(log)}")
                    time.sleep(0.05)
            except BaseException:
                _stop(process)
                raise
            if process.poll() is None:
                break
        else:
            raise RuntimeError(f"moto server did not start; its output:\n{_tail(log)}")
        try:
            yield MotoServer(f"http://{HOST}:{port}", port, process)
        finally:
            _stop(process)


def received(server: Any) -> dict[str, dict[str, int]]:
    """What ``server`` (an ``aqueuepipe.testing`` one, which counts where requests
    arrive) received since its counts were last reset: requests and request bytes by
    S3 operation."""
    counts = server.requests()
    return {"requests": dict(counts.counts), "request_bytes": dict(counts.bytes)}


# Operations whose request bodies are object bytes the client sent.
BODY_OPERATIONS = ("PutObject", "UploadPart")


def through_client(readings: list[dict[str, Any]]) -> dict[str, int]:
    """The most GetObject requests and upload body bytes (PutObject, UploadPart) any of
    ``readings`` (each with :func:`received`'s keys) made: both 0 where the server copied."""
    return {
        "max_get_objects": max(r["requests"].get("GetObject", 0) for r in readings),
        "max_upload_body_bytes": max(
            sum(r["request_bytes"].get(op, 0) for op in BODY_OPERATIONS) for r in readings
        ),
    }
