"""The aqueuepipe command, run as users run it: a subprocess talking to a moto server."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from aqueuepipe import NoSuchBucketError, TransferResult
from aqueuepipe.cli import main, redact, result_json
from aqueuepipe.s3 import S3Client

from .conftest import MakeBucket, MotoServer, free_port
from .faultproxy import FaultProxy

# Variables that would make rich draw progress bars or colours into the pipes.
_TERMINAL_VARIABLES = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "CLICOLOR_FORCE")


def cli_env(endpoint_url: str | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test environment (fake credentials, no AWS config) pointing at ``endpoint_url``."""
    env = {k: v for k, v in os.environ.items() if k not in _TERMINAL_VARIABLES}
    env.pop("AWS_ENDPOINT_URL", None)
    # The debug pass of CI is for this process: in the command, asyncio's debug
    # log ("Executing ... took 0.17 seconds") would be output the tests compare.
    env.pop("PYTHONASYNCIODEBUG", None)
    if endpoint_url is not None:
        env["AWS_ENDPOINT_URL"] = endpoint_url
    env.update(extra or {})
    return env


def run(
    *args: str, endpoint_url: str | None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aqueuepipe", *args],
        env=cli_env(endpoint_url, env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
    )


@pytest.fixture
def endpoint(moto_server: MotoServer) -> str:
    return moto_server.endpoint_url


@pytest.fixture
def s3(boto3_client: Any) -> Any:
    return boto3_client


@pytest.fixture
def bucket(s3: Any) -> Iterator[str]:
    name = f"cli-{uuid.uuid4().hex}"
    s3.create_bucket(Bucket=name)
    yield name


@pytest.fixture
def other_bucket(s3: Any) -> Iterator[str]:
    name = f"cli-{uuid.uuid4().hex}"
    s3.create_bucket(Bucket=name)
    yield name


def read(s3: Any, bucket: str, key: str) -> bytes:
    data: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return data


def keys(s3: Any, bucket: str) -> set[str]:
    return {obj["Key"] for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


# -- cp between buckets ---------------------------------------------------------------


def test_cp_single_object_copies_it_and_prints_a_summary(
    endpoint: str, s3: Any, bucket: str, other_bucket: str
) -> None:
    data = payload(300_000)
    s3.put_object(Bucket=bucket, Key="in/one.bin", Body=data)
    done = run(
        "cp", f"s3://{bucket}/in/one.bin", f"s3://{other_bucket}/out.bin", endpoint_url=endpoint
    )
    assert done.returncode == 0, done.stderr
    assert read(s3, other_bucket, "out.bin") == data
    assert "copied 1 object (300.0 kB)" in done.stdout
    assert "0 failed" in done.stdout
    assert "peak memory" in done.stdout and "process peak RSS" in done.stdout
    assert done.stderr == ""


def test_cp_into_a_prefix_keeps_the_object_name(
    endpoint: str, s3: Any, bucket: str, other_bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="deep/name.txt", Body=b"hello")
    done = run(
        "cp", f"s3://{bucket}/deep/name.txt", f"s3://{other_bucket}/into/", endpoint_url=endpoint
    )
    assert done.returncode == 0, done.stderr
    assert keys(s3, other_bucket) == {"into/name.txt"}


def test_cp_recursive_copies_a_prefix_keeping_relative_paths(
    endpoint: str, s3: Any, bucket: str, other_bucket: str
) -> None:
    objects = {"data/a.txt": b"a", "data/sub/b.txt": b"bb", "data/sub/deeper/c.bin": payload(5000)}
    for key, body in {**objects, "elsewhere/x.txt": b"x", "data.txt": b"not under data/"}.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    done = run(
        "cp",
        "--recursive",
        f"s3://{bucket}/data",
        f"s3://{other_bucket}/copy",
        endpoint_url=endpoint,
    )
    assert done.returncode == 0, done.stderr
    assert keys(s3, other_bucket) == {"copy/a.txt", "copy/sub/b.txt", "copy/sub/deeper/c.bin"}
    for key, body in objects.items():
        assert read(s3, other_bucket, "copy/" + key.removeprefix("data/")) == body
    assert "copied 3 objects" in done.stdout


def test_cp_json_prints_one_result_per_line(
    endpoint: str, s3: Any, bucket: str, other_bucket: str
) -> None:
    objects = {"j/one": b"1" * 10, "j/two": b"2" * 20}
    for key, body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    done = run(
        "cp",
        "-r",
        "--json",
        "--checksum",
        "sha256",
        "--checksum",
        "md5",
        f"s3://{bucket}/j/",
        f"s3://{other_bucket}/k/",
        endpoint_url=endpoint,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(line["dst"] for line in lines) == [
        f"s3://{other_bucket}/k/one",
        f"s3://{other_bucket}/k/two",
    ]
    for line in lines:
        assert line["ok"] is True and line["error"] is None
        assert set(line) >= {"src", "dst", "size", "etag", "parts", "checksums", "seconds"}
        assert set(line["checksums"]) == {"sha256", "md5"}
        assert line["size"] == len(objects[line["src"].split("/", 3)[3]])
        assert line["parts"] == 0 and line["throughput"] >= 0
        ends = {label.partition(":")[0] for label in line["verified"]}
        assert ends == {"source", "destination"}
    assert "copied" not in done.stdout  # no summary in JSON mode


def test_cp_missing_bucket_exits_1_with_one_line_error(endpoint: str, other_bucket: str) -> None:
    missing = f"missing-{uuid.uuid4().hex}"
    done = run("cp", f"s3://{missing}/key", f"s3://{other_bucket}/key", endpoint_url=endpoint)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: s3://{missing}/key -> s3://{other_bucket}/key: "
        f"source bucket '{missing}' does not exist"
    ]
    assert "Traceback" not in done.stderr
    assert "1 failed" in done.stdout


def test_cp_missing_bucket_in_json_mode_reports_the_error(endpoint: str, other_bucket: str) -> None:
    missing = f"missing-{uuid.uuid4().hex}"
    done = run("cp", "--json", f"s3://{missing}/k", f"s3://{other_bucket}/k", endpoint_url=endpoint)
    assert done.returncode == 1
    (line,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert line["ok"] is False
    assert line["error"] == f"source bucket '{missing}' does not exist"
    assert line["error_type"] == "NoSuchBucketError"
    assert len(done.stderr.splitlines()) == 1


def test_cp_quiet_prints_nothing_on_success(
    endpoint: str, s3: Any, bucket: str, other_bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="q", Body=b"quiet")
    done = run("cp", "-q", f"s3://{bucket}/q", f"s3://{other_bucket}/q", endpoint_url=endpoint)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


# -- cp with local files --------------------------------------------------------------


def test_cp_uploads_a_local_file_and_downloads_it_back(
    endpoint: str, s3: Any, bucket: str, tmp_path: Path
) -> None:
    data = payload(250_000, seed=3)
    original = tmp_path / "original.bin"
    original.write_bytes(data)
    up = run("cp", str(original), f"s3://{bucket}/files/", endpoint_url=endpoint)
    assert up.returncode == 0, up.stderr
    assert read(s3, bucket, "files/original.bin") == data
    back = tmp_path / "back.bin"
    down = run("cp", f"s3://{bucket}/files/original.bin", str(back), endpoint_url=endpoint)
    assert down.returncode == 0, down.stderr
    assert back.read_bytes() == data


def test_cp_recursive_uploads_and_downloads_a_directory(
    endpoint: str, s3: Any, bucket: str, tmp_path: Path
) -> None:
    tree = {"a.txt": b"a", "sub/b.txt": b"b", "sub/deeper/c.txt": b"c"}
    for name, body in tree.items():
        (tmp_path / "tree" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "tree" / name).write_bytes(body)
    up = run("cp", "-r", str(tmp_path / "tree"), f"s3://{bucket}/t/", endpoint_url=endpoint)
    assert up.returncode == 0, up.stderr
    assert keys(s3, bucket) == {f"t/{name}" for name in tree}
    down = run("cp", "-r", f"s3://{bucket}/t/", str(tmp_path / "out"), endpoint_url=endpoint)
    assert down.returncode == 0, down.stderr
    for name, body in tree.items():
        assert (tmp_path / "out" / name).read_bytes() == body


# -- usage errors ---------------------------------------------------------------------


def test_cp_bad_limit_exits_2_before_copying(endpoint: str) -> None:
    done = run("cp", "s3://bucket-a/k", "s3://bucket-b/k", "--limit", "30XB", endpoint_url=endpoint)
    assert done.returncode == 2
    assert "invalid size '30XB'" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cp", "s3://b-1/k", "s3://b-2/k", "--limit", "junk"], "invalid size 'junk'"),
        (["cp", "s3://b-1/k", "s3://b-2/k", "--limit", "0"], "more than 0 bytes"),
        (["cp", "s3://b-1/k", "s3://b-2/k", "--part-size", "1MB"], "at least 5MiB"),
        (["cp", "s3://b-1/k", "s3://b-2/k", "--limit", "6MB"], "must hold at least one part"),
        (["cp", "s3://b-1/k", "s3://b-2/k", "--concurrency", "0"], "must be at least 1"),
        (["cp", "s3://b-1/k", "s3://b-2/k", "--checksum", "sha512"], "invalid choice"),
        (["cp", "s3://b-1/k", "s3://b-2/k", "--s3-checksum", "md6"], "invalid choice"),
        (["cp", "s3://b-1/k", "s3://b-2/k", "--verify", "always"], "invalid choice"),
        (["cp", "s3://B_AD/k", "s3://b-2/k"], "bucket name"),
        (["cp", "gs://b-1/k", "s3://b-2/k"], "unsupported scheme 'gs'"),
        (["cp", "./a", "./b"], "must be an s3:// URL"),
        (["cp", "s3://b-1/dir/", "s3://b-2/k"], "add --recursive"),
        (["cp", "s3://b-1/k", "s3://b-1/k"], "same object"),
        (["cp", "-r", "s3://b-1/d/", "s3://b-1/d/sub/"], "is inside SRC"),
        (["cp", "s3://b-1/k", "s3://b-2/k", "--endpoint-url", "ftp://x"], "invalid S3 endpoint"),
        (["cp", "s3://b-1/k"], "required: DST"),
        (["frobnicate"], "invalid choice"),
        ([], "required: COMMAND"),
    ],
)
def test_usage_errors_exit_2_with_a_message(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("usage: aqueuepipe")


def test_cp_directory_without_recursive_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cp", str(tmp_path), "s3://bucket-b/k"]) == 2
    assert "is a directory: add --recursive" in capsys.readouterr().err


def test_help_describes_the_commands_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "cp" in out and "demo" in out and "examples:" in out


def test_cp_help_lists_options_sizes_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cp", "--help"]) == 0
    out = capsys.readouterr().out
    for text in ("--recursive", "--limit SIZE", "--checksum ALGO", "64MiB", "examples:"):
        assert text in out
    assert "exit status" in out


def test_version_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    from aqueuepipe import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"aqueuepipe {__version__}"


def test_console_script_runs(endpoint: str) -> None:
    script = Path(sys.executable).with_name("aqueuepipe")
    if not script.exists():
        pytest.skip("the aqueuepipe console script is not installed beside this interpreter")
    done = subprocess.run(
        [str(script), "--version"],
        env=cli_env(endpoint),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.startswith("aqueuepipe ")


# -- credentials never printed ------------------------------------------------------------


def test_cp_refuses_an_endpoint_holding_credentials_without_echoing_them() -> None:
    secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
    endpoint = f"http://someone:{secret}@127.0.0.1:{free_port()}"
    done = run(
        "cp", "--endpoint-url", endpoint, "s3://bucket-a/k", "s3://bucket-b/k", endpoint_url=None
    )
    assert done.returncode == 2
    assert "must not hold user:password@" in done.stderr
    assert secret not in done.stdout + done.stderr
    assert "someone" not in done.stdout + done.stderr


def test_cp_failure_never_prints_the_secret_key() -> None:
    secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
    done = run(
        "cp",
        "s3://bucket-a/k",
        "s3://bucket-b/k",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        env={"AWS_SECRET_ACCESS_KEY": secret},
    )
    assert done.returncode == 1
    assert "cannot reach endpoint" in done.stderr
    assert secret not in done.stdout + done.stderr


def test_redact_removes_userinfo_and_secret_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEXAMPLETOKEN")
    text = "GET http://user:pw@host:9000/x failed with token FwoGZXIvYXdzEXAMPLETOKEN"
    assert redact(text) == "GET http://host:9000/x failed with token <redacted>"


def test_result_json_has_the_error_as_a_string() -> None:
    error = NoSuchBucketError("s3://nope/k", "s3://b/k", "nope")
    result = TransferResult(
        src="s3://nope/k", dst="s3://b/k", size=0, etag=None, parts=0, error=error
    )
    line = json.loads(json.dumps(result_json(result)))
    assert line["ok"] is False
    assert line["error"] == "bucket 'nope' does not exist"
    assert line["error_type"] == "NoSuchBucketError"


# -- interruption -----------------------------------------------------------------------


def test_cp_interrupted_exits_130_with_a_short_message() -> None:
    # An "S3 server" that accepts the connection and never answers: once it has
    # accepted, the copy is certainly in flight, waiting for a response.
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(60)
        port = server.getsockname()[1]
        process = subprocess.Popen(
            [sys.executable, "-m", "aqueuepipe", "cp", "s3://bucket-a/k", "s3://bucket-b/k"],
            env=cli_env(f"http://127.0.0.1:{port}"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            connection, _ = server.accept()
            with connection:
                process.send_signal(signal.SIGINT)
                out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 130
    assert err == "aqueuepipe: interrupted\n"
    assert out == ""


# -- demo -------------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_exits_0_and_prints_its_table() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "aqueuepipe", "demo"],
        env={**cli_env(None), "COLUMNS": "100"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=115,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for text in ("demo-1MB.bin", "demo-100MB.bin", "md5", "sha256", "read back", "budget peak"):
        assert text in done.stdout
    assert "FAILED" not in done.stdout
    assert "all 4 copies verified" in done.stdout


def test_cp_summary_says_what_verified_the_copies(
    endpoint: str, s3: Any, bucket: str, other_bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="v", Body=b"verified bytes")
    done = run("cp", f"s3://{bucket}/v", f"s3://{other_bucket}/v", endpoint_url=endpoint)
    assert done.returncode == 0, done.stderr
    verified = [line for line in done.stdout.splitlines() if line.startswith("verified:")]
    assert len(verified) == 1
    assert "source:" in verified[0] and "destination:etag-md5 x1" in verified[0]


async def test_cp_verify_required_fails_a_copy_without_evidence(
    fault_proxy: FaultProxy, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src, dst = await make_bucket(), await make_bucket()
    await s3_client.put_object(Bucket=src, Key="k", Body=b"no checksum stored")
    fault_proxy.rewrite_etags(lambda etag: '"opaque"')
    done = await asyncio.to_thread(
        run,
        "cp",
        "--verify",
        "required",
        f"s3://{src}/k",
        f"s3://{dst}/k",
        endpoint_url=fault_proxy.endpoint_url,
    )
    assert done.returncode == 1
    assert "verify='required'" in done.stderr
    assert "Traceback" not in done.stderr
    listed = await s3_client.list_objects_v2(Bucket=dst)
    assert listed.get("KeyCount", 0) == 0
