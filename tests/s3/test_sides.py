"""Every TransferError says on which side it happened, decided where the call was made.

The copy's tasks (reading the source, uploading parts, writing a file) fail at the
same time; the side must come from the failing call, not from whatever the other
tasks were doing at that moment.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aqueuepipe import NoSuchBucketError, RetryPolicy, TransferError, copy, copy_many
from aqueuepipe.s3 import S3Client, create_client

from .._helpers import (
    MakeBucket,
    MiB,
    MotoServer,
    collect,
    copy_streamed,
    key_exists,
    open_uploads,
    payload,
    put,
)
from ..faultproxy import FaultProxy, Match

FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05, read_timeout=5)


async def test_missing_destination_bucket_while_the_source_streams_is_the_destination(
    moto_server: MotoServer, make_bucket: MakeBucket
) -> None:
    src = await make_bucket(objects={"big": payload(17 * MiB, seed=1)})
    with pytest.raises(NoSuchBucketError) as caught:
        await copy(
            f"s3://{src}/big", "s3://no-such-bucket-here/big", endpoint_url=moto_server.endpoint_url
        )
    assert caught.value.side == "destination"
    assert caught.value.bucket == "no-such-bucket-here"


async def test_missing_source_bucket_is_the_source(
    moto_server: MotoServer, make_bucket: MakeBucket
) -> None:
    dst = await make_bucket()
    with pytest.raises(NoSuchBucketError) as caught:
        await copy(
            "s3://no-such-bucket-here/k", f"s3://{dst}/k", endpoint_url=moto_server.endpoint_url
        )
    assert caught.value.side == "source"


async def test_endpoint_killed_mid_upload_is_the_destination(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src, dst = await make_bucket(objects={"big": payload(17 * MiB, seed=2)}), await make_bucket()
    async with FaultProxy(moto_server.endpoint_url) as proxy:
        # Every part's connection dies before the server answers: the destination
        # endpoint is gone while the source (reached directly) still streams.
        proxy.reset(Match(operation="UploadPart"), times=None)
        async with (
            create_client(endpoint_url=moto_server.endpoint_url) as source,
            create_client(endpoint_url=proxy.endpoint_url) as target,
        ):
            with pytest.raises(TransferError) as caught:
                await copy(
                    f"s3://{src}/big",
                    f"s3://{dst}/big",
                    src_client=source,
                    dst_client=target,
                    retries=FAST,
                )
    assert caught.value.side == "destination"
    assert "destination" in str(caught.value)
    assert await open_uploads(s3_client, dst) == []
    assert not await key_exists(s3_client, dst, "big")


async def test_source_connection_broken_for_good_is_the_source(
    fault_proxy: FaultProxy, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src, dst = await make_bucket(objects={"big": payload(17 * MiB, seed=3)}), await make_bucket()
    fault_proxy.reset(Match(operation="GetObject"), after_bytes=MiB, times=None)
    with pytest.raises(TransferError) as caught:
        await copy_streamed(f"s3://{src}/big", f"s3://{dst}/big", fault_proxy.endpoint_url)
    assert caught.value.side == "source"
    assert await open_uploads(s3_client, dst) == []


_DISK_FULL = textwrap.dedent(
    """
    import asyncio, resource, signal, sys

    from aqueuepipe import TransferError, copy

    # Writes past 1 MiB fail with EFBIG, as they would on a full disk, instead of
    # killing the process with SIGXFSZ.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY))

    async def main() -> None:
        try:
            await copy(sys.argv[1], sys.argv[2], endpoint_url=sys.argv[3])
        except TransferError as exc:
            print(exc.side, type(exc.__cause__).__name__, exc.__cause__.errno)
        else:
            print("no error")

    asyncio.run(main())
    """
)


async def test_local_write_failure_on_a_download_is_the_destination(
    moto_server: MotoServer, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    src = await make_bucket(objects={"big": payload(3 * MiB, seed=4)})
    target = tmp_path / "out" / "big.bin"
    target.parent.mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _DISK_FULL,
            f"s3://{src}/big",
            str(target),
            moto_server.endpoint_url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    side, cause, errno_value = done.stdout.split()
    assert (side, cause) == ("destination", "OSError")
    assert int(errno_value) == 27  # EFBIG
    assert list(target.parent.iterdir()) == []  # no file, no temporary file


class _BrokenListener:
    """A progress listener that fails when told a copy started: a fault of neither
    object."""

    def transfer_started(self, src: str, dst: str, total: int | None) -> None:
        raise RuntimeError("the listener broke")

    def transfer_advanced(self, src: str, dst: str, nbytes: int) -> None:
        pass

    def transfer_finished(self, result: object) -> None:
        pass


async def test_an_error_about_neither_object_has_no_side(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    """It used to be labelled "source", like every error not translated at its call."""
    bucket = await make_bucket()
    source = tmp_path / "a.bin"
    source.write_bytes(b"data")
    with pytest.raises(TransferError) as caught:
        await copy(
            str(source),
            f"s3://{bucket}/k",
            endpoint_url=moto_server.endpoint_url,
            progress=_BrokenListener(),  # type: ignore[arg-type]
        )
    assert caught.value.side is None
    assert "the listener broke" in str(caught.value)
    assert "source" not in caught.value.reason
    assert not await key_exists(s3_client, bucket, "k")


async def test_a_listing_whose_destination_client_cannot_be_made_is_the_destination(
    s3_client: S3Client,
    make_bucket: MakeBucket,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The expansion of a prefix labelled every failure "source", this one too."""
    bucket = await make_bucket()
    await put(s3_client, bucket, "a/k", b"x")
    broken = tmp_path / "config"
    broken.write_text("no section here\n[unclosed\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(broken))  # the destination's client is made
    results = await collect(
        copy_many(
            [(f"s3://{bucket}/a/", f"s3://{bucket}/b/")], recursive=True, src_client=s3_client
        )
    )
    assert len(results) == 1
    assert isinstance(results[0].error, TransferError)
    assert results[0].error.side == "destination"
    assert not await key_exists(s3_client, bucket, "b/k")
