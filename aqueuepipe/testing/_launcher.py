"""The moto server process: start, count requests, stop (see :mod:`aqueuepipe.testing`)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO

from ._server import CONTROL_PATH

__all__ = ["FAKE_CREDENTIALS", "MotoServer", "RequestCounts", "moto_server"]

FAKE_CREDENTIALS: Mapping[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
"""The credentials the ``s3_endpoint`` fixture puts in the environment (moto takes any)."""

_STARTUP_TIMEOUT = 30.0
_SHUTDOWN_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class RequestCounts:
    """Requests a server received, by S3 operation (``"UploadPart"``...), the
    request bytes received by each, and the response bytes it wrote for each."""

    counts: Mapping[str, int] = field(default_factory=dict)
    bytes: Mapping[str, int] = field(default_factory=dict)
    sent: Mapping[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __getitem__(self, operation: str) -> int:
        return self.counts.get(operation, 0)


@dataclass(frozen=True)
class MotoServer:
    """A moto server process listening on ``endpoint_url``.

    ``settings`` are the extra environment variables it was started with (moto
    reads ``S3_UPLOAD_PART_MIN_SIZE`` and the like when it starts).
    """

    endpoint_url: str
    host: str
    port: int
    process: subprocess.Popen[bytes]
    settings: Mapping[str, str]
    validate_digests: bool = False

    def _request(self, method: str, path: str) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            connection.request(method, path)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def reset(self) -> None:
        """Forget every bucket and object (moto's ``POST /moto-api/reset``).

        Prefer fresh buckets to resetting a server other tests share.
        """
        status, _ = self._request("POST", "/moto-api/reset")
        if status != 200:
            raise RuntimeError(f"moto reset at {self.endpoint_url} answered HTTP {status}")

    def requests(self) -> RequestCounts:
        """What the server received since it started or :meth:`reset_requests`."""
        status, body = self._request("GET", CONTROL_PATH)
        if status != 200:
            raise RuntimeError(f"{self.endpoint_url} counts no requests (HTTP {status})")
        answer = json.loads(body)
        return RequestCounts(
            counts=answer["counts"], bytes=answer["bytes"], sent=answer.get("sent", {})
        )

    def reset_requests(self) -> None:
        """Start counting requests from zero."""
        self._request("DELETE", CONTROL_PATH)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=_SHUTDOWN_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=_SHUTDOWN_TIMEOUT)


def _tail(log: IO[bytes], limit: int = 4000) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")[-limit:]


def _ready(process: subprocess.Popen[bytes]) -> bool:
    """Wait (at most 30 s) for the server's ``ready`` line; False if it exited first."""
    assert process.stdout is not None
    readable, _, _ = select.select([process.stdout], [], [], _STARTUP_TIMEOUT)
    if not readable:
        raise RuntimeError(f"moto server did not start within {_STARTUP_TIMEOUT} s")
    return process.stdout.readline().strip() == b"ready"


@contextlib.contextmanager
def moto_server(
    settings: Mapping[str, str] | None = None,
    *,
    validate_digests: bool = False,
    host: str = "127.0.0.1",
) -> Iterator[MotoServer]:
    """Run moto's S3 server in a process of its own on a free port of ``host``
    until the block exits.

    ``settings`` are environment variables for the server (moto's own, such as
    ``S3_UPLOAD_PART_MIN_SIZE``); no ``AWS_*`` variable of this process reaches
    it.  ``validate_digests`` makes it refuse wrong digests as S3 does.  Every
    request is counted by operation (:meth:`MotoServer.requests`).

    Raises:
        RuntimeError: the server did not start (its output is quoted).
    """
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(FAKE_CREDENTIALS)
    env.update(settings or {})
    command = [sys.executable, "-m", "aqueuepipe.testing._server"]
    if validate_digests:
        command.append("--validate-digests")
    # The port is bound here and the socket handed to the server: no other process
    # can take it meanwhile, and connections made before the server serves wait in
    # the listen queue.
    with (
        socket.create_server((host, 0), backlog=128) as listening,
        tempfile.TemporaryFile() as log,
    ):
        port: int = listening.getsockname()[1]
        process = subprocess.Popen(
            [*command, "--fd", str(listening.fileno())],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            pass_fds=(listening.fileno(),),
        )
        try:
            if not _ready(process):
                raise RuntimeError(f"moto server did not start; its output:\n{_tail(log)}")
        except BaseException:
            _stop(process)
            raise
        listening.close()  # the server's copy stays open
        try:
            yield MotoServer(
                f"http://{host}:{port}",
                host,
                port,
                process,
                dict(settings or {}),
                validate_digests,
            )
        finally:
            _stop(process)
            if process.stdout is not None:
                process.stdout.close()
