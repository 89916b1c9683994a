"""Quantities as exact numbers: Decimal kilograms, integer grams and minor units."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal

KG_PLACES = 6
_KG_QUANTUM = Decimal(1).scaleb(-KG_PLACES)


def round_kg(kg_co2e: Decimal) -> Decimal:
    """Round a footprint to the published precision: 6 places, half to even."""
    return kg_co2e.quantize(_KG_QUANTUM, rounding=ROUND_HALF_EVEN)


def kg_to_offset(kg_co2e: Decimal) -> int:
    """Whole kilograms needed to offset a footprint: always rounded up."""
    if kg_co2e < 0:
        raise ValueError("a footprint is never negative")
    return int(kg_co2e.to_integral_value(rounding=ROUND_CEILING))


def format_kg(kg_co2e: Decimal) -> str:
    """The canonical string form of a kilogram amount (fixed 6 places, no exponent)."""
    return f"{round_kg(kg_co2e):f}"
