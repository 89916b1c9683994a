"""ISO 3166 codes the vocabulary accepts: countries (alpha-2) and their subdivisions."""

from __future__ import annotations

from functools import lru_cache

import pycountry


@lru_cache(maxsize=1)
def iso_3166_codes() -> tuple[str, ...]:
    """Every ISO 3166-1 alpha-2 and ISO 3166-2 code, from the ``pycountry`` database."""
    countries = {country.alpha_2 for country in pycountry.countries}
    subdivisions = {subdivision.code for subdivision in pycountry.subdivisions}
    return tuple(sorted(countries | subdivisions))
