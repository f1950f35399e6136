"""Credentials never appear in errors, results or their reprs."""

from __future__ import annotations

import contextlib

import pytest

from aqueuepipe import copy_many

from .._helpers import MotoServer

ACCESS_KEY = "AKIAAQUEUEPIPETEST01"
SECRET_KEY = "aqueuepipe/Secret+Key/never-shown-0123456789"


async def test_rejected_credentials_do_not_leak_into_results(
    moto_server_with_auth: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    async with contextlib.aclosing(
        copy_many(
            [("s3://some-bucket/key", "s3://other-bucket/key")],
            endpoint_url=moto_server_with_auth.endpoint_url,
            retries=0,
        )
    ) as results:
        [result] = [r async for r in results]
    assert result.error is not None
    shown = " ".join(
        [str(result.error), repr(result.error), repr(result), str(result.error.__cause__)]
    )
    assert SECRET_KEY not in shown
    assert ACCESS_KEY not in shown
