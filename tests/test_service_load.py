"""examples/streaming_service.py under load, measured from outside: the peak RSS
growth of a fresh process running the service, while clients, some of which stall
or break off, run in another process (tests/_clients.py).

The slack allowed beyond the budget (:data:`SLACK`) covers what is not in the
budget: per connection, aiohttp's and asyncio's buffers (about 1 to 2 MiB for a
request body aiohttp reads ahead; a stalled client's socket holds the chunk being
written to it, ``service.CHUNK``), the hashing threads, and the allocator's free
lists.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from aqueuepipe.s3 import S3Client

from ._helpers import MakeBucket, MiB, MotoServer, open_uploads, payload, put
from ._memory import Growth, measure_growth

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "streaming_service.py"

LIMIT = 16 * MiB
SLACK = 20 * MiB
#: What each concurrent client's connection adds outside the budget, beyond SLACK:
#: measured 33 to 40 MiB of growth for 16 clients under 16 MiB, about 2.4 MiB for
#: each uploading connection (neither the allocator, nor aiohttp's request buffer,
#: measured at <= 256 KiB; see the report of issue 17).
PER_CONNECTION = MiB

# The measured process: the service, and the client workload in a child process.
_SERVICE = """
import importlib.util, json
ROOT, EXAMPLE, ENDPOINT, BUCKET, LIMIT, *CLIENTS = sys.argv[1:]
from aiohttp import web

_spec = importlib.util.spec_from_file_location("streaming_service", EXAMPLE)
service = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(service)

async def clients(*args):
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests._clients", args[0], base, *args[1:],
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await child.communicate()
    assert child.returncode == 0, f"the clients failed ({child.returncode})"
    return json.loads(out.decode().strip().splitlines()[-1])

async def warm_up():
    global app, runner, base
    app = service.make_app(bucket=BUCKET, endpoint_url=ENDPOINT, limit=int(LIMIT))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    base = f"http://{host}:{port}"
    await clients("warm")

async def workload():
    report = await clients(*CLIENTS)
    await runner.cleanup()  # waits for the handlers of clients that went away
    report["used"] = app[service.BUDGET].used
    return report
"""


async def _run_service(
    moto_server: MotoServer, bucket: str, *clients: str, timeout: float
) -> tuple[Growth, dict[str, Any]]:
    measured = await measure_growth(
        _SERVICE,
        str(ROOT),
        str(EXAMPLE),
        moto_server.endpoint_url,
        bucket,
        str(LIMIT),
        *clients,
        timeout=timeout,
    )
    report = measured.report
    assert isinstance(report, dict)
    return measured, report


async def _put_objects(client: S3Client, bucket: str, big: int, small: int = 0) -> None:
    """What the service's clients GET: big0... (30 MiB, for those that stop reading),
    obj0... (12 MiB) and "warm"."""
    for i in range(big):
        await put(client, bucket, f"big{i}", payload(30 * MiB, seed=i))
    for i in range(small):
        await put(client, bucket, f"obj{i}", payload(12 * MiB, seed=10 + i))
    await put(client, bucket, "warm", payload(256 * 1024, seed=99))


async def _keys(client: S3Client, bucket: str, prefix: str) -> list[str]:
    answer = await client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [entry["Key"] for entry in answer.get("Contents", [])]


#: The most the 12 fast requests may take together beside 4 stalled readers: a
#: bound on a hang (a stalled reader holding the budget froze them for 300 s).
FAST_BOUND = 60


async def test_service_with_16_clients_4_stalled_stays_within_the_limit(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    """16 concurrent clients, 4 of which GET a 30 MiB object and stop reading: the 12
    others (six 20 MiB PUTs, six 12 MiB GETs) are served, and the service grows by
    at most the budget plus the slack."""
    bucket = await make_bucket()
    stalled, puts, gets = 4, 6, 6
    await _put_objects(s3_client, bucket, big=stalled, small=gets)

    measured, report = await _run_service(
        moto_server,
        bucket,
        "stalled-readers",
        str(stalled),
        str(puts),
        str(gets),
        str(FAST_BOUND),
        timeout=FAST_BOUND + 60,
    )

    assert report["sizes"] == [20 * MiB] * puts + [12 * MiB] * gets
    assert report["used"] == 0
    print(f"peak RSS growth {measured.mib:.1f} MiB, {report['seconds']:.1f} s")  # pytest -s
    bound = LIMIT + SLACK + (stalled + puts + gets) * PER_CONNECTION
    assert measured.growth <= bound, f"{measured.mib:.1f} MiB"
    assert await open_uploads(s3_client, bucket) == []


#: How long the soak runs: its clients start requests until then.
SOAK_SECONDS = 60
#: The longest any one request of a fast client may take during the soak.
SOAK_REQUEST_BOUND = 30


@pytest.mark.slow
@pytest.mark.timeout(SOAK_SECONDS + 120)  # its service process is stopped at +50 s
async def test_service_soak_stays_within_the_limit_and_leaves_nothing_behind(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    """50 clients PUT and GET 1 KiB to 20 MiB bodies for a minute beside 5 that stop
    reading their GETs and 5 that reset their connections mid-body: every fast
    request is served within :data:`SOAK_REQUEST_BOUND`, the service grows by at
    most the budget plus the slack, and no object or open upload is left from the
    clients that broke off."""
    bucket = await make_bucket()
    await _put_objects(s3_client, bucket, big=5)

    measured, report = await _run_service(
        moto_server,
        bucket,
        "soak",
        str(SOAK_SECONDS),
        "17",
        "50",
        "5",
        "5",
        str(SOAK_REQUEST_BOUND),
        timeout=SOAK_SECONDS + 50,
    )

    print(json.dumps(report), f"peak RSS growth {measured.mib:.1f} MiB", file=sys.stderr)
    assert report["failures"] == []
    assert report["requests"] >= 50 and report["cuts"] >= 5
    assert report["longest"] <= SOAK_REQUEST_BOUND
    assert report["used"] == 0
    assert measured.growth <= LIMIT + SLACK + 60 * PER_CONNECTION, f"{measured.mib:.1f} MiB"
    assert await open_uploads(s3_client, bucket) == []
    assert await _keys(s3_client, bucket, "cut/") == []
