"""``aqueuepipe uploads list|abort [--older-than AGE] s3://bucket/prefix``.

Open multipart uploads (another tool's, or one a ``kill -9`` left) keep their
parts, billed as storage, and show in no listing of objects.  ``list`` prints
each one under the prefix with its age and the bytes its parts hold; ``abort``
aborts them, printing each one as it goes.  ``--older-than 1d`` keeps to those
created at least that long ago (a copy running now has a young one), ``--json``
prints one JSON object per upload instead.  Exit status: 0, 1 when a request
failed, 2 for a bad argument.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import sys
from typing import Any

import botocore.exceptions

from .._report import printable
from .._units import format_duration, format_size, parse_duration
from ..s3 import (
    OpenUpload,
    abort_upload,
    create_client,
    open_uploads,
    parse_s3_url,
    translate_error,
)
from ..s3._secrets import redact
from ._help import EXIT_FAILED

__all__ = ["add_uploads_command"]

_DESCRIPTION = """\
List or abort the open multipart uploads under an S3 prefix: uploads created and
never completed or aborted (by another tool, or by a copy that was killed), whose
parts are stored and billed but appear in no listing of objects."""

_EPILOG = """\
examples:
  aqueuepipe uploads list s3://bucket/
  aqueuepipe uploads list --older-than 1d --json s3://bucket/backups/
  aqueuepipe uploads abort --older-than 7d s3://bucket/
  aqueuepipe uploads abort --upload-id ID s3://bucket/big.tar"""


def _age(text: str) -> datetime.timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_uploads_command(commands: Any) -> None:
    """Add ``uploads`` (with ``list`` and ``abort``) to the sub-commands ``commands``."""
    uploads = commands.add_parser(
        "uploads",
        help="list or abort open multipart uploads",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = uploads.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (
        ("list", "list the open uploads with their age and size"),
        ("abort", "abort the open uploads (their parts are deleted)"),
    ):
        parser = actions.add_parser(action, help=text, description=text)
        parser.add_argument("url", metavar="S3_URL", help="s3://bucket or s3://bucket/prefix")
        parser.add_argument(
            "--older-than",
            type=_age,
            metavar="AGE",
            help="only uploads created at least AGE ago: 30m, 12h, 1d, 2w",
        )
        parser.add_argument(
            "--upload-id",
            metavar="ID",
            help="only the upload ID, of the key S3_URL names exactly (not as a prefix)",
        )
        parser.add_argument(
            "--endpoint-url",
            metavar="URL",
            help="S3 endpoint of an S3-compatible server (default: AWS_ENDPOINT_URL_S3, "
            "AWS_ENDPOINT_URL, else AWS)",
        )
        parser.add_argument(
            "--json", action="store_true", help="one JSON object per upload on standard output"
        )
        parser.set_defaults(run=_run, parser=parser)


def _run(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.parser
    try:
        where = parse_s3_url(args.url, require_key=False)
    except ValueError as exc:
        parser.error(str(exc))  # exits with status 2
    if args.upload_id is not None and not where.key:
        parser.error(f"--upload-id needs the URL of the upload's key, not {args.url!r}")
    return asyncio.run(_uploads(args, where))


async def _uploads(args: argparse.Namespace, where: Any) -> int:
    abort = args.action == "abort"
    count = total = 0
    try:
        async with create_client(endpoint_url=args.endpoint_url) as client:
            async for upload in open_uploads(client, where, older_than=args.older_than):
                if args.upload_id is not None and (upload.upload_id, upload.key) != (
                    args.upload_id,
                    where.key,
                ):
                    continue
                aborted = await abort_upload(client, upload) if abort else None
                _show(upload, aborted, as_json=args.json)
                count += 1
                total += upload.size
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, OSError) as exc:
        error = translate_error(
            exc, src=str(args.url), dst="", bucket=where.bucket, key=where.key, side=None
        )
        print(f"error: {printable(redact(error.reason))}", file=sys.stderr)
        return EXIT_FAILED
    if not args.json:
        verb = "aborted" if abort else "open"
        print(f"{count} {verb} upload{'s' if count != 1 else ''}, {format_size(total)} in parts")
    return 0


def _show(upload: OpenUpload, aborted: bool | None, *, as_json: bool) -> None:
    if as_json:
        record: dict[str, Any] = {
            "url": upload.url,
            "upload_id": upload.upload_id,
            "initiated": upload.initiated.isoformat(),
            "age_seconds": int(upload.age().total_seconds()),
            "size": upload.size,
            "parts": upload.parts,
        }
        if aborted is not None:
            record["aborted"] = aborted
        print(json.dumps(record), flush=True)
        return
    state = "" if aborted is None else ("aborted " if aborted else "gone    ")
    print(
        f"{state}{format_duration(upload.age()):>7} {format_size(upload.size):>10} "
        f"{upload.parts:>5} parts  {printable(upload.url)}  {upload.upload_id}",
        flush=True,
    )
