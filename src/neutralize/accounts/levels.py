"""Green reputation without I/O: a level from the grams verified over the last twelve months and the
months they were earned in, and badges for milestones. The rule is published in docs/accounts.md;
changing it is a new ``RULE`` version, so a level shown to a partner names the rule that gave it.

Levels count verified behaviour (every credited gram, bundled or not): they describe what a person
did, not a carbon claim. Bundled grams leave the person's reduction claim (see docs/accounts.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

RULE = "green-levels@1.0.0"
WINDOW_DAYS = 365


class Level(StrEnum):
    STARTER = "starter"
    GREEN_STEP = "green_step"
    GREEN_COMMUTER = "green_commuter"
    GREEN_PIONEER = "green_pioneer"
    GREEN_CHAMPION = "green_champion"


# (level, grams in the last twelve months at least, months with credits at least), highest first.
THRESHOLDS: tuple[tuple[Level, int, int], ...] = (
    (Level.GREEN_CHAMPION, 1_000_000, 6),
    (Level.GREEN_PIONEER, 100_000, 3),
    (Level.GREEN_COMMUTER, 10_000, 1),
    (Level.GREEN_STEP, 1_000, 1),
)


class Badge(StrEnum):
    FIRST_REDUCTION = "first_reduction"  # a first credited gram
    HUNDRED_RIDES = "hundred_rides"  # 100 credited public-transport trips
    THOUSAND_KM_ACTIVE = "thousand_km_active"  # 1,000 km walked or cycled, credited
    TONNE_SAVED_FREIGHT = "tonne_saved_freight"  # 1 t saved by matched freight
    STEADY_HALF_YEAR = "steady_half_year"  # credits in 6 of the last 12 months


@dataclass(frozen=True)
class Activity:
    """What a person's accounts were credited: over the last twelve months, and ever."""

    grams_last_year: int
    active_months_last_year: int
    grams_ever: int
    public_transport_trips: int
    active_travel_m: int  # metres walked or cycled, credited
    freight_grams: int


@dataclass(frozen=True)
class Reputation:
    rule: str
    level: Level
    next_level: Level | None
    grams_to_next: int  # 0 at the top, or when only active months are missing
    badges: tuple[Badge, ...]


def reputation(activity: Activity) -> Reputation:
    """The level and badges ``activity`` earns under ``RULE``."""
    level = Level.STARTER
    for candidate, grams, months in THRESHOLDS:
        if activity.grams_last_year >= grams and activity.active_months_last_year >= months:
            level = candidate
            break
    order = [Level.STARTER, *[t[0] for t in reversed(THRESHOLDS)]]
    higher = order.index(level) + 1
    next_level = order[higher] if higher < len(order) else None
    needed = next(g for lv, g, _m in THRESHOLDS if lv == next_level) if next_level else 0
    earned = [
        (Badge.FIRST_REDUCTION, activity.grams_ever > 0),
        (Badge.HUNDRED_RIDES, activity.public_transport_trips >= 100),
        (Badge.THOUSAND_KM_ACTIVE, activity.active_travel_m >= 1_000_000),
        (Badge.TONNE_SAVED_FREIGHT, activity.freight_grams >= 1_000_000),
        (Badge.STEADY_HALF_YEAR, activity.active_months_last_year >= 6),
    ]
    return Reputation(
        rule=RULE,
        level=level,
        next_level=next_level,
        grams_to_next=max(0, needed - activity.grams_last_year),
        badges=tuple(badge for badge, won in earned if won),
    )
