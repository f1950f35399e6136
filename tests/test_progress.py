"""Progress counters and the terminal display."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from aqueuepipe import TransferError, TransferResult, copy_many
from aqueuepipe.progress import BatchProgress, ProgressDisplay
from aqueuepipe.s3 import S3Client

from .conftest import MakeBucket

A = ("s3://src/a.bin", "s3://dst/a.bin")
B = ("s3://src/b.bin", "s3://dst/b.bin")


def done(pair: tuple[str, str], size: int) -> TransferResult:
    return TransferResult(src=pair[0], dst=pair[1], size=size, etag='"x"', parts=0)


def failed(pair: tuple[str, str]) -> TransferResult:
    error = TransferError(pair[0], pair[1], "it broke")
    return TransferResult(src=pair[0], dst=pair[1], size=0, etag=None, parts=0, error=error)


def test_batch_progress_totals_follow_started_advanced_finished() -> None:
    totals = BatchProgress()
    totals.transfer_started(*A, 100)
    totals.transfer_started(*B, 50)
    assert (totals.bytes_done, totals.bytes_total, totals.active_count) == (0, 150, 2)
    totals.transfer_advanced(*A, 60)
    totals.transfer_advanced(*B, 50)
    assert [(t.src, t.done, t.total) for t in totals.active] == [
        (A[0], 60, 100),
        (B[0], 50, 50),
    ]
    totals.transfer_finished(done(B, 50))
    totals.transfer_advanced(*A, 40)
    totals.transfer_finished(done(A, 100))
    assert (totals.bytes_done, totals.bytes_total) == (150, 150)
    assert (totals.started, totals.succeeded, totals.failed, totals.finished) == (2, 2, 0, 2)
    assert totals.active == [] and totals.fraction == 1.0


def test_batch_progress_total_grows_as_transfers_start() -> None:
    totals = BatchProgress()
    assert totals.fraction == 0.0
    totals.transfer_started(*A, 100)
    totals.transfer_advanced(*A, 100)
    assert totals.fraction == 1.0
    totals.transfer_started(*B, 300)
    assert (totals.bytes_done, totals.bytes_total, totals.fraction) == (100, 400, 0.25)


def test_batch_progress_unknown_size_counts_bytes_as_they_come() -> None:
    totals = BatchProgress()
    totals.transfer_started(*A, None)
    totals.transfer_advanced(*A, 10)
    totals.transfer_advanced(*A, 5)
    assert (totals.bytes_done, totals.bytes_total) == (15, 15)
    totals.transfer_finished(done(A, 15))
    assert (totals.bytes_done, totals.bytes_total) == (15, 15)


def test_batch_progress_failure_drops_the_bytes_never_sent_from_the_total() -> None:
    totals = BatchProgress()
    totals.transfer_started(*A, 100)
    totals.transfer_started(*B, 100)
    totals.transfer_advanced(*A, 30)
    totals.transfer_finished(failed(A))
    assert (totals.bytes_done, totals.bytes_total) == (30, 130)
    assert (totals.succeeded, totals.failed, totals.active_count) == (0, 1, 1)


def test_batch_progress_counts_failure_before_start() -> None:
    totals = BatchProgress()
    totals.transfer_finished(failed(A))
    assert (totals.started, totals.failed, totals.bytes_total, totals.active_count) == (0, 1, 0, 0)


def test_batch_progress_success_settles_bytes_to_result_size() -> None:
    totals = BatchProgress()
    totals.transfer_started(*A, 100)
    totals.transfer_advanced(*A, 40)
    totals.transfer_finished(done(A, 100))
    assert (totals.bytes_done, totals.bytes_total) == (100, 100)


def test_batch_progress_ignores_events_of_unknown_transfers() -> None:
    totals = BatchProgress()
    totals.transfer_advanced(*A, 10)
    assert (totals.bytes_done, totals.bytes_total) == (0, 0)


def test_batch_progress_same_pair_twice_is_counted_twice() -> None:
    totals = BatchProgress()
    totals.transfer_started(*A, 10)
    totals.transfer_started(*A, 20)
    assert totals.active_count == 2 and totals.bytes_total == 30
    totals.transfer_advanced(*A, 10)
    totals.transfer_finished(done(A, 10))
    assert totals.active_count == 1
    totals.transfer_finished(done(A, 20))
    assert (totals.bytes_done, totals.bytes_total, totals.succeeded) == (30, 30, 2)


async def test_batch_progress_counts_a_real_batch(
    s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src, dst = await make_bucket(), await make_bucket()
    sizes = {"one": 1000, "two": 20_000, "three": 1}
    for key, size in sizes.items():
        await s3_client.put_object(Bucket=src, Key=key, Body=b"x" * size)
    pairs = [(f"s3://{src}/{key}", f"s3://{dst}/{key}") for key in sizes]
    pairs.append((f"s3://{src}/missing", f"s3://{dst}/missing"))
    totals = BatchProgress()
    results = [r async for r in copy_many(pairs, client=s3_client, progress=totals)]
    assert len(results) == 4
    assert (totals.succeeded, totals.failed, totals.active_count) == (3, 1, 0)
    assert totals.bytes_done == totals.bytes_total == sum(sizes.values())


# -- the rich display ---------------------------------------------------------------


def terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=120), out


def test_display_renders_bars_with_object_names() -> None:
    console, out = terminal()
    with ProgressDisplay(console=console) as display:
        display.transfer_started("s3://src/dir/[bold]odd name.bin", "s3://dst/x", 1000)
        display.transfer_advanced("s3://src/dir/[bold]odd name.bin", "s3://dst/x", 400)
        display.transfer_started("s3://src/other.bin", "s3://dst/y", None)
        display.refresh()
        display.transfer_finished(done(("s3://src/other.bin", "s3://dst/y"), 5))
    text = out.getvalue()
    assert "dir/[bold]odd name.bin" in text  # shown literally, not as markup
    assert "other.bin" in text
    assert "all: 1 done" in text
    assert display.totals.bytes_done == 405


def test_display_escapes_control_characters_in_object_names() -> None:
    console, out = terminal()
    key = "s3://src/evil-\x1b]0;title\x07\x1b[2J.bin"
    with ProgressDisplay(console=console) as display:
        display.transfer_started(key, "s3://dst/x", 1000)
        display.refresh()
    text = out.getvalue()
    assert "evil-\\x1b]0;title\\x07\\x1b[2J.bin" in text
    for sequence in ("\x1b]0;", "\x07", "\x1b[2J"):
        assert sequence not in text


def test_display_leaves_out_userinfo_of_urls() -> None:
    console, out = terminal()
    with ProgressDisplay(console=console) as display:
        display.transfer_started("https://user:SECRET@host/file.bin", "s3://dst/x", 10)
        display.refresh()
    assert "file.bin" in out.getvalue()
    assert "SECRET" not in out.getvalue()


def test_display_shows_failures_and_limits_the_bars() -> None:
    console, out = terminal()
    with ProgressDisplay(console=console, max_bars=2) as display:
        for i in range(5):
            display.transfer_started(f"s3://src/obj-{i}", f"s3://dst/obj-{i}", 10)
        display.transfer_finished(failed(("s3://src/obj-0", "s3://dst/obj-0")))
        display.refresh()
    text = out.getvalue()
    assert "1 failed" in text and "2 more" in text
    assert "obj-1" in text and "obj-2" in text and "obj-4" not in text


def test_display_survives_every_copy_failing() -> None:
    console, out = terminal()
    with ProgressDisplay(console=console) as display:
        display.transfer_started(*A, 100)
        display.refresh()
        display.transfer_finished(failed(A))
        display.refresh()
    assert "1 failed" in out.getvalue()


def test_display_draws_empty_objects() -> None:
    console, out = terminal()
    with ProgressDisplay(console=console) as display:
        display.transfer_started("s3://src/empty", "s3://dst/empty", 0)
        display.refresh()
        display.transfer_finished(done(("s3://src/empty", "s3://dst/empty"), 0))
        display.refresh()
    assert "empty" in out.getvalue() and "all: 1 done" in out.getvalue()


def test_display_is_off_when_output_is_not_a_terminal() -> None:
    out = io.StringIO()
    display = ProgressDisplay(console=Console(file=out))
    assert not display.enabled
    with display:
        display.transfer_started(*A, 10)
        display.refresh()
        display.transfer_finished(done(A, 10))
    assert out.getvalue() == ""
    assert display.totals.succeeded == 1


def test_display_can_be_forced_off() -> None:
    console, out = terminal()
    with ProgressDisplay(console=console, enabled=False) as display:
        display.transfer_started(*A, 10)
        display.refresh()
    assert out.getvalue() == ""


def test_display_rejects_negative_max_bars() -> None:
    with pytest.raises(ValueError, match="max_bars"):
        ProgressDisplay(max_bars=-1)
