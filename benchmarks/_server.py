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
from typing import IO

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
# mode, PYTHONASYNCIODEBUG) rejects a response with two Server headers.
_SERVER_MAIN = """
import sys
from moto import server
from moto.moto_server.werkzeug_app import MotoRequestHandler

def send_response(self, code, message=None):
    self.log_request(code)
    self.send_response_only(code, message)
    self.send_header("Date", self.date_time_string())

MotoRequestHandler.send_response = send_response
server.main(sys.argv[1:])
"""

_STARTUP_TIMEOUT = 30.0
_SHUTDOWN_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class MotoServer:
    """A moto server process listening on ``endpoint_url``."""

    endpoint_url: str
    port: int
    process: subprocess.Popen[bytes]

    def cpu_seconds(self) -> float | None:
        """User + system CPU the server process has used so far (Linux only)."""
        try:
            with open(f"/proc/{self.process.pid}/stat", encoding="ascii") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            return None
        # Fields 14 and 15 of stat (utime, stime), counted after "pid (comm)".
        ticks = int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")


def client_environment(endpoint_url: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default ``os.environ``) with every ``AWS_*`` replaced by fakes and the endpoint."""
    env = {k: v for k, v in (base or os.environ).items() if not k.startswith("AWS_")}
    env.update(FAKE_CREDENTIALS)
    env.update(_ISOLATION)
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


@contextlib.contextmanager
def moto_server() -> Iterator[MotoServer]:
    """Run ``python -m moto.server -H 127.0.0.1 -p PORT`` until the block exits.

    Waits (at most 30 s) until it answers HTTP; its log goes to a temporary file,
    quoted if it fails to start.
    """
    env = client_environment("")
    del env["AWS_ENDPOINT_URL"]
    with tempfile.TemporaryFile() as log:
        # Another process may take the port between _free_port() and the
        # server's bind; then the server exits at once and we try another.
        for _ in range(3):
            port = _free_port()
            process = subprocess.Popen(
                [sys.executable, "-c", _SERVER_MAIN, "-H", HOST, "-p", str(port)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                deadline = time.monotonic() + _STARTUP_TIMEOUT
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
