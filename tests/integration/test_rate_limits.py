"""Rate limits count attempts by bucket, whatever the bucket's length: a bucket longer than the
column (a sign-in for a very long address) is counted by its prefix and hash, so it is limited like
a short one, and two long buckets that differ only at the end are counted apart."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from neutralize.access import users
from neutralize.core.clock import FixedClock
from neutralize.core.errors import DomainError, ErrorCode

CLOCK = FixedClock(datetime(2026, 11, 25, 9, tzinfo=UTC))


def attempt(session: Session, bucket: str) -> None:
    users.rate_limit(session=session, clock=CLOCK, bucket=bucket, limit=2, window_seconds=60)


@pytest.mark.parametrize("length", [20, 200, 201, 400])
def test_a_bucket_of_any_length_is_limited(session: Session, length: int) -> None:
    bucket = "signin:" + "a" * (length - len("signin:"))
    attempt(session, bucket)
    attempt(session, bucket)
    with pytest.raises(DomainError) as refused:
        attempt(session, bucket)
    assert refused.value.code is ErrorCode.RATE_LIMITED


def test_long_buckets_that_differ_at_the_end_are_counted_apart(session: Session) -> None:
    common = "signin:" + "b" * 300
    attempt(session, common + "1")
    attempt(session, common + "1")
    attempt(session, common + "2")  # a third attempt, but the first in its own bucket
    attempt(session, common + "2")
