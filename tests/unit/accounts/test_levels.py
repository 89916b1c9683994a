"""The green-level rule: thresholds on the last twelve months' grams and active months, the next
level and what it still takes, and the milestone badges."""

from __future__ import annotations

import pytest

from neutralize.accounts.levels import RULE, Activity, Badge, Level, reputation

NOTHING = Activity(
    grams_last_year=0,
    active_months_last_year=0,
    grams_ever=0,
    public_transport_trips=0,
    active_travel_m=0,
    freight_grams=0,
)


def activity(**changes: int) -> Activity:
    return Activity(**{**NOTHING.__dict__, **changes})


@pytest.mark.parametrize(
    ("grams", "months", "level", "to_next"),
    [
        (0, 0, Level.STARTER, 1_000),
        (999, 1, Level.STARTER, 1),
        (1_000, 1, Level.GREEN_STEP, 9_000),
        (10_000, 1, Level.GREEN_COMMUTER, 90_000),
        (100_000, 2, Level.GREEN_COMMUTER, 0),  # the grams are there; a third active month is not
        (100_000, 3, Level.GREEN_PIONEER, 900_000),
        (5_000_000, 5, Level.GREEN_PIONEER, 0),
        (1_000_000, 6, Level.GREEN_CHAMPION, 0),
    ],
)
def test_levels_need_grams_and_steady_months(grams: int, months: int, level: Level, to_next: int) -> None:
    found = reputation(activity(grams_last_year=grams, active_months_last_year=months, grams_ever=grams))
    assert (found.rule, found.level, found.grams_to_next) == (RULE, level, to_next)
    assert (found.next_level is None) == (level is Level.GREEN_CHAMPION)


def test_badges_mark_milestones_and_nothing_earns_none() -> None:
    assert reputation(NOTHING).badges == ()
    found = reputation(
        activity(
            grams_ever=1,
            public_transport_trips=100,
            active_travel_m=1_000_000,
            freight_grams=999_999,
            active_months_last_year=6,
        )
    )
    assert found.badges == (
        Badge.FIRST_REDUCTION,
        Badge.HUNDRED_RIDES,
        Badge.THOUSAND_KM_ACTIVE,
        Badge.STEADY_HALF_YEAR,
    )
