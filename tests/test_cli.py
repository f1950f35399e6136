"""The aqueuepipe command, run as users run it: a subprocess talking to a moto server."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import socket
import stat
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

from ._helpers import MakeBucket, MiB, MotoServer, free_port, payload
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


def run_binary(
    *args: str, endpoint_url: str | None, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    """The command with ``stdin`` as its standard input; output as bytes."""
    return subprocess.run(
        [sys.executable, "-m", "aqueuepipe", *args],
        env=cli_env(endpoint_url),
        input=stdin,
        capture_output=True,
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


@pytest.mark.parametrize(("flags", "copies", "gets"), [((), 1, 0), (("--stream",), 0, 1)])
def test_cp_within_one_endpoint_is_made_by_the_server_unless_streamed(
    moto_server: MotoServer,
    s3: Any,
    bucket: str,
    other_bucket: str,
    flags: tuple[str, ...],
    copies: int,
    gets: int,
) -> None:
    s3.put_object(Bucket=bucket, Key="obj", Body=b"x" * 1000)
    moto_server.reset_requests()
    done = run(
        "cp",
        *flags,
        f"s3://{bucket}/obj",
        f"s3://{other_bucket}/obj",
        endpoint_url=moto_server.endpoint_url,
    )
    assert done.returncode == 0, done.stderr
    counted = moto_server.requests()
    assert (counted["CopyObject"], counted["GetObject"]) == (copies, gets), counted.counts
    assert read(s3, other_bucket, "obj") == b"x" * 1000


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
        assert line["parts"] == 1 and line["throughput"] >= 0  # one part: see test_copy.py
        ends = {label.partition(":")[0] for label in line["verified"]}
        assert ends == {"source", "destination"}
    assert "copied" not in done.stdout  # no summary in JSON mode


# -- sync -------------------------------------------------------------------------------


def sync_json(src: str, dst: str, endpoint: str) -> list[dict[str, Any]]:
    done = run("sync", "--json", "--part-size", "5MiB", src, dst, endpoint_url=endpoint)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert all(line["ok"] for line in lines), lines
    return lines


def copied_keys(lines: list[dict[str, Any]]) -> set[str]:
    return {line["dst"].split("/", 3)[3] for line in lines if not line["skipped"]}


def put_sync_objects(s3: Any, bucket: str, count: int) -> dict[str, bytes]:
    """``count`` objects under ``src/``, one of them multipart (6 MB at 5 MiB parts)."""
    objects = {f"src/{i:02d}.bin": payload(1000 + i, seed=i) for i in range(count - 1)}
    objects["src/big/multipart.bin"] = payload(6_000_000, seed=99)
    for key, body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    return objects


def test_sync_copies_a_prefix_and_counts_copied_and_skipped(
    endpoint: str, s3: Any, bucket: str, other_bucket: str
) -> None:
    objects = put_sync_objects(s3, bucket, 5)
    args = ("sync", "--part-size", "5MiB", f"s3://{bucket}/src", f"s3://{other_bucket}/dst/")
    done = run(*args, endpoint_url=endpoint)
    assert done.returncode == 0, done.stderr
    assert "copied 5 objects" in done.stdout
    assert "0 skipped (already there), 0 failed" in done.stdout
    for key, body in objects.items():
        assert read(s3, other_bucket, "dst/" + key.removeprefix("src/")) == body
    again = run(*args, endpoint_url=endpoint)
    assert again.returncode == 0, again.stderr
    assert "copied 0 objects" in again.stdout
    assert "5 skipped (already there), 0 failed" in again.stdout


def test_sync_run_again_copies_nothing(
    endpoint: str, s3: Any, bucket: str, other_bucket: str
) -> None:
    put_sync_objects(s3, bucket, 6)
    src, dst = f"s3://{bucket}/src/", f"s3://{other_bucket}/dst/"
    first = sync_json(src, dst, endpoint)
    assert len(first) == 6 and not any(line["skipped"] for line in first)
    again = sync_json(src, dst, endpoint)
    assert len(again) == 6
    assert copied_keys(again) == set()
    assert all(line["skipped"] for line in again)


def test_sync_after_deletions_and_overwrites_copies_exactly_those(
    endpoint: str, s3: Any, bucket: str, other_bucket: str
) -> None:
    objects = put_sync_objects(s3, bucket, 20)
    src, dst = f"s3://{bucket}/src/", f"s3://{other_bucket}/dst/"
    assert len(copied_keys(sync_json(src, dst, endpoint))) == 20
    names = sorted(key.removeprefix("src/") for key in objects)
    deleted = set(names[:10])
    # Overwritten with new content of the same size: only the ETag tells them apart.
    overwritten = {names[-1], names[-2], names[-3]}  # the multipart object among them
    assert "big/multipart.bin" in overwritten and not deleted & overwritten
    for name in deleted:
        s3.delete_object(Bucket=other_bucket, Key="dst/" + name)
    for name in overwritten:
        body = objects["src/" + name]
        objects["src/" + name] = new = bytes(b ^ 0xFF for b in body)
        s3.put_object(Bucket=bucket, Key="src/" + name, Body=new)
    lines = sync_json(src, dst, endpoint)
    assert len(lines) == 20
    assert copied_keys(lines) == {"dst/" + name for name in deleted | overwritten}
    assert sum(line["skipped"] for line in lines) == 7
    assert keys(s3, other_bucket) == {"dst/" + name for name in names}
    for name in deleted | overwritten:
        assert read(s3, other_bucket, "dst/" + name) == objects["src/" + name]


def test_sync_uploads_only_the_files_that_changed(
    endpoint: str, s3: Any, bucket: str, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    for name in ("a.txt", "b.txt", "sub/c.txt"):
        (tree / name).write_bytes(name.encode() * 100)
    dst = f"s3://{bucket}/up/"
    assert copied_keys(sync_json(str(tree), dst, endpoint)) == {
        "up/a.txt",
        "up/b.txt",
        "up/sub/c.txt",
    }
    (tree / "b.txt").write_bytes(b"changed" * 100)
    assert copied_keys(sync_json(str(tree), dst, endpoint)) == {"up/b.txt"}
    assert read(s3, bucket, "up/b.txt") == b"changed" * 100


def test_sync_help_says_what_it_skips(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sync", "--help"]) == 0
    out = capsys.readouterr().out
    for text in ("already there", "--limit SIZE", "--json", "examples:", "exit status"):
        assert text in out
    assert "-r, --recursive" not in out  # sync always is


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


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_cp_download_over_a_private_file_keeps_it_private(
    endpoint: str, s3: Any, bucket: str, tmp_path: Path
) -> None:
    s3.put_object(Bucket=bucket, Key="secret.txt", Body=b"new secret")
    target = tmp_path / "secret.txt"
    target.write_bytes(b"old secret")
    target.chmod(0o600)
    done = run("cp", f"s3://{bucket}/secret.txt", str(target), endpoint_url=endpoint)
    assert done.returncode == 0, done.stderr
    assert target.read_bytes() == b"new secret"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


# -- standard input and output ----------------------------------------------------------


def open_uploads(s3: Any, bucket: str) -> list[str]:
    return [upload["Key"] for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


@pytest.mark.parametrize(
    # One part below a part's size: plain moto does not check digests (see test_copy.py).
    ("size", "parts"),
    [(3 * MiB, 1), (9 * MiB, 2)],
    ids=["one-part", "multipart"],
)
def test_cp_from_standard_input_uploads_its_bytes(
    endpoint: str, s3: Any, bucket: str, size: int, parts: int | None
) -> None:
    data = payload(size, seed=size)
    done = run_binary("cp", "-", f"s3://{bucket}/from-stdin", endpoint_url=endpoint, stdin=data)
    assert done.returncode == 0, done.stderr
    assert read(s3, bucket, "from-stdin") == data
    head = s3.head_object(Bucket=bucket, Key="from-stdin", PartNumber=1)
    assert head.get("PartsCount") == parts
    assert b"copied 1 object" in done.stdout  # standard output is free for the summary
    assert open_uploads(s3, bucket) == []


def test_cp_from_empty_standard_input_writes_an_empty_object(
    endpoint: str, s3: Any, bucket: str
) -> None:
    done = run_binary("cp", "-q", "-", f"s3://{bucket}/empty", endpoint_url=endpoint)
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    assert read(s3, bucket, "empty") == b""


@pytest.mark.parametrize("size", [3 * MiB, 9 * MiB], ids=["small", "multipart"])
def test_cp_to_standard_output_writes_the_object_bytes_only(
    endpoint: str, s3: Any, bucket: str, size: int
) -> None:
    transfer = pytest.importorskip("boto3.s3.transfer")
    data = payload(size, seed=size + 1)
    config = transfer.TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB)
    s3.upload_fileobj(io.BytesIO(data), bucket, "obj", Config=config)  # 9 MiB: two parts
    done = run_binary("cp", f"s3://{bucket}/obj", "-", endpoint_url=endpoint)
    assert done.returncode == 0, done.stderr
    assert done.stdout == data
    assert b"copied 1 object" in done.stderr  # the summary goes to standard error


def test_cp_standard_input_to_s3_and_back_to_standard_output_round_trips(
    endpoint: str, s3: Any, bucket: str
) -> None:
    data = payload(9 * MiB + 123, seed=7)
    up = run_binary("cp", "-q", "-", f"s3://{bucket}/round", endpoint_url=endpoint, stdin=data)
    assert up.returncode == 0, up.stderr
    down = run_binary("cp", "-q", f"s3://{bucket}/round", "-", endpoint_url=endpoint)
    assert (down.returncode, down.stderr) == (0, b"")
    assert down.stdout == data


def test_cp_to_standard_output_json_goes_to_standard_error(
    endpoint: str, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="j", Body=b"json elsewhere")
    done = run_binary("cp", "--json", f"s3://{bucket}/j", "-", endpoint_url=endpoint)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"json elsewhere"
    (line,) = [json.loads(line) for line in done.stderr.splitlines()]
    assert line["ok"] is True
    assert (line["src"], line["dst"]) == (f"s3://{bucket}/j", "-")


def test_cp_to_standard_output_closed_early_ends_quietly(
    endpoint: str, s3: Any, bucket: str
) -> None:
    # More than any pipe buffer holds, so the command is still writing when
    # `head` has its ten bytes and goes.
    data = payload(9 * MiB, seed=11)
    s3.put_object(Bucket=bucket, Key="big", Body=data)
    done = subprocess.run(
        [
            "bash",
            "-c",
            '"$0" -m aqueuepipe cp "$1" - | head -c 10; echo "status=${PIPESTATUS[0]}" >&2',
            sys.executable,
            f"s3://{bucket}/big",
        ],
        env=cli_env(endpoint),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=90,
    )
    assert done.stdout == data[:10]
    # Exit status 1 (the copy did not complete), and nothing else said about it.
    assert done.stderr == b"status=1\n"
    assert open_uploads(s3, bucket) == []


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
        (["cp", "s3://b-1/k", "s3://b-2/k", "--part-size", "6GiB"], "at most 5GiB"),
        (["cp", "s3://b-1/k", "s3://b-2/k", "--part-size", "5368709121"], "at most 5GiB"),
        (["cp", "-", "-"], "cannot both be '-'"),
        (["cp", "-r", "-", "s3://b-2/k"], "--recursive does not apply"),
        (["sync", "-", "s3://b-2/k/"], "sync does not apply"),
        (["cp", "-", "s3://b-2/dir/"], "must name an object"),
        (["cp", "s3://b-1/dir/", "-"], "must name an object"),
        (["cp", "-", "./local"], "must be an s3:// URL"),
        (["cp", "s3://b-1/k", "s3://b-2/k", "--limit", "6MB"], "must hold at least one part"),
        (["cp", "s3://b-1/k", "s3://b-2/k", "--concurrency", "0"], "must be at least 1"),
        (["cp", "s3://b-1/k", "s3://b-2/k", "--checksum", "sha512"], "invalid choice"),
        (["cp", "s3://b-1/k", "s3://b-2/k", "--s3-checksum", "md6"], "invalid choice"),
        (["cp", "s3://b-1/k", "s3://b-2/k", "--verify", "always"], "invalid choice"),
        (["cp", "s3://B_AD/k", "s3://b-2/k"], "bucket name"),
        (["cp", "gs://b-1/k", "s3://b-2/k"], "unsupported scheme 'gs'"),
        (["cp", "s3:/b-1/k", "./k"], "did you mean 's3://b-1/k'?"),
        (["cp", "./k", " s3://b-1/k"], "did you mean 's3://b-1/k'?"),
        (["cp", "./a", "./b"], "must be an s3:// URL"),
        (["cp", "s3://b-1/dir/", "s3://b-2/k"], "add --recursive"),
        (["cp", "s3://b-1/k", "s3://b-1/k"], "same object"),
        (["cp", "-r", "s3://b-1/d/sub", "s3://b-1/d/"], "lies in destination prefix"),
        (["cp", "-r", "s3://b-1/d/", "s3://b-1/d"], "lies in destination prefix"),
        (["cp", "s3://b-1/k", "s3://b-2/k", "--endpoint-url", "ftp://x"], "invalid S3 endpoint"),
        (["cp", "s3://b-1/k", "s3://b-2/k", "--max-rate", "0"], "must be more than 0 bytes"),
        (
            ["cp", "-r", "s3://b-1/d/", "s3://b-2/d/", "--dask", "2", "--max-rate", "1MB"],
            "--max-rate caps",
        ),
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


@pytest.mark.parametrize(
    "args",
    [
        ["cp", "s3://AKIAIOSFODNN7EXAMPLE:SECRET@bucket/k", "x"],
        ["cp", "x", "s3://AKIAIOSFODNN7EXAMPLE:SECRET@bucket/k"],
        ["cp", "s3://someone:SECRET@bucket/k", "-"],
        ["cp", "s3://bucket-a/k", "x", "s3://someone:SECRET@bucket/k"],  # an extra argument
    ],
    ids=["src", "dst", "with-stdout", "unrecognized"],
)
def test_cp_url_with_userinfo_exits_2_without_echoing_it(args: list[str]) -> None:
    done = run(*args, endpoint_url=f"http://127.0.0.1:{free_port()}")
    assert done.returncode == 2
    assert "SECRET" not in done.stdout + done.stderr
    assert "AKIAIOSFODNN7EXAMPLE" not in done.stdout + done.stderr
    assert "someone" not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_cp_url_with_userinfo_is_refused_as_such(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cp", "s3://AKIAIOSFODNN7EXAMPLE:SECRET@bucket/k", "x"]) == 2
    err = capsys.readouterr().err
    assert "'s3://bucket/k': it must not hold user:password@" in err


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
    assert line["skipped"] is False
    assert line["error"] == "bucket 'nope' does not exist"
    assert line["error_type"] == "NoSuchBucketError"


# -- nothing printed drives the terminal ---------------------------------------------------

HOSTILE_KEY = "evil-\x1b]0;title\x07\x1b[2J.bin"
HOSTILE_SEQUENCES = ("\x1b]0;", "\x07", "\x1b[2J")


def test_cp_hostile_key_is_escaped_in_progress_bars_and_summary(
    endpoint: str, s3: Any, bucket: str, other_bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key=HOSTILE_KEY, Body=payload(2 * MiB, seed=5))
    # Progress bars drawn as on a terminal (TTY_COMPATIBLE makes rich draw them).
    terminal = {"TTY_COMPATIBLE": "1", "TERM": "xterm-256color", "COLUMNS": "120"}
    done = run(
        "cp",
        f"s3://{bucket}/{HOSTILE_KEY}",
        f"s3://{other_bucket}/copy.bin",
        endpoint_url=endpoint,
        env=terminal,
    )
    assert done.returncode == 0, done.stderr
    assert "all: 1 done" in done.stderr  # the bars were drawn
    # Whether a redraw caught the copy's own bar depends on timing: its label is
    # pinned in test_progress.py; here, no raw sequence reaches the terminal.
    for sequence in HOSTILE_SEQUENCES:
        assert sequence not in done.stdout + done.stderr


def test_cp_hostile_key_is_escaped_in_error_lines(endpoint: str, bucket: str) -> None:
    done = run("cp", f"s3://{bucket}/{HOSTILE_KEY}", f"s3://{bucket}/x", endpoint_url=endpoint)
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: s3://{bucket}/evil-\\x1b]0;title\\x07\\x1b[2J.bin -> ")
    for sequence in HOSTILE_SEQUENCES:
        assert sequence not in done.stdout + done.stderr


def test_cp_hostile_key_is_escaped_in_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"s3://bucket-a/{HOSTILE_KEY}"
    assert main(["cp", url, url]) == 2
    err = capsys.readouterr().err
    assert "same object" in err
    for sequence in HOSTILE_SEQUENCES:
        assert sequence not in err


def test_cp_hostile_key_is_escaped_in_json(endpoint: str, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key=HOSTILE_KEY, Body=b"x")
    done = run(
        "cp", "--json", f"s3://{bucket}/{HOSTILE_KEY}", f"s3://{bucket}/y", endpoint_url=endpoint
    )
    assert done.returncode == 0, done.stderr
    for sequence in HOSTILE_SEQUENCES:
        assert sequence not in done.stdout
    assert json.loads(done.stdout)["src"] == f"s3://{bucket}/{HOSTILE_KEY}"


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
    for text in ("demo-1MB.bin", "demo-100MB.bin", "md5", "sha256", "read back"):
        assert text in done.stdout
    assert "FAILED" not in done.stdout
    assert "all 4 copies verified" in done.stdout
    # The server runs in its own process: the growth reported is the copies', and
    # it stays near the 30 MB limit (the process grew 811 MB with the server inside).
    assert "running in its own process" in done.stdout
    grown = re.search(r"peak RSS by ([\d.]+) MB", " ".join(done.stdout.split()))
    assert grown is not None, done.stdout
    assert float(grown.group(1)) <= 30 + 25


@pytest.mark.parametrize(
    ("flags", "labels"),
    [((), ("server-side:",)), (("--stream",), ("source:", "destination:etag-md5 x1"))],
)
def test_cp_summary_says_what_verified_the_copies(
    endpoint: str,
    s3: Any,
    bucket: str,
    other_bucket: str,
    flags: tuple[str, ...],
    labels: tuple[str, ...],
) -> None:
    s3.put_object(Bucket=bucket, Key="v", Body=b"verified bytes")
    done = run("cp", *flags, f"s3://{bucket}/v", f"s3://{other_bucket}/v", endpoint_url=endpoint)
    assert done.returncode == 0, done.stderr
    verified = [line for line in done.stdout.splitlines() if line.startswith("verified:")]
    assert len(verified) == 1
    assert all(label in verified[0] for label in labels), verified


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
