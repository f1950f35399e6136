"""RetryPolicy: validation and backoff."""

from __future__ import annotations

import random

import pytest

from aqueuepipe import RetryPolicy
from aqueuepipe.s3._retry import as_policy


def test_defaults_are_valid() -> None:
    policy = RetryPolicy()
    assert policy.attempts >= 1 and policy.stall_timeout is not None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("attempts", 0),
        ("attempts", -1),
        ("max_seconds", 0),
        ("base_delay", -0.1),
        ("max_delay", 0),
        ("read_timeout", 0),
        ("connect_timeout", -1),
        ("stall_timeout", 0),
    ],
)
def test_invalid_setting_raises_naming_it(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        RetryPolicy(**{field: value})  # type: ignore[arg-type]


def test_stall_timeout_may_be_disabled() -> None:
    assert RetryPolicy(stall_timeout=None).stall_timeout is None


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0)
    rng = random.Random(7)
    for retry, cap in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (10, 3.0)]:
        delays = [policy.backoff(retry, rng) for _ in range(200)]
        assert all(0 <= d <= cap for d in delays)
        assert max(delays) > cap * 0.8  # jitter spreads over the whole range


def test_as_policy_accepts_int_policy_or_none() -> None:
    assert as_policy(None) == RetryPolicy()
    assert as_policy(3).attempts == 4  # three retries after the first attempt
    assert as_policy(0).attempts == 1
    policy = RetryPolicy(attempts=2, stall_timeout=5)
    assert as_policy(policy) is policy


@pytest.mark.parametrize("bad", [-1, -2, True, 1.5, "3"])
def test_as_policy_rejects_bad_values(bad: object) -> None:
    with pytest.raises(ValueError, match="retries"):
        as_policy(bad)  # type: ignore[arg-type]
