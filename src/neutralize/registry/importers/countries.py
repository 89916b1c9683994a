"""Country names as registries publish them, mapped to ISO 3166-1 alpha-2 codes where possible."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import pycountry

# Names registries use that are neither an ISO 3166 name nor a reordering of one.
ALIASES: dict[str, str] = {
    "turkey": "TR",
    "russia": "RU",
    "democraticrepublicofthecongo": "CD",
    "drcongo": "CD",
    "republicofthecongo": "CG",
    "ivorycoast": "CI",
    "southkorea": "KR",
    "northkorea": "KP",
    "vietnam": "VN",
    "laos": "LA",
    "swaziland": "SZ",
    "capeverde": "CV",
    "macedonia": "MK",
    "burma": "MM",
}


def ascii_fold(text: str) -> str:
    """Lower case with accents removed, punctuation kept: ``"Côte d'Ivoire"`` → ``"cote d'ivoire"``."""
    decomposed = unicodedata.normalize("NFKD", text)
    return decomposed.encode("ascii", "ignore").decode("ascii").lower()


def normalized(text: str) -> str:
    """Lower-case letters and digits only, accents removed: ``"Côte d'Ivoire"`` → ``"cotedivoire"``."""
    return re.sub(r"[^a-z0-9]", "", ascii_fold(text))


@lru_cache(maxsize=1)
def _names() -> dict[str, str]:
    index: dict[str, str] = {}
    for country in pycountry.countries:
        for attribute in ("name", "official_name", "common_name"):
            name = getattr(country, attribute, None)
            if name:
                index.setdefault(normalized(str(name)), str(country.alpha_2))
    for alias, code in ALIASES.items():
        index.setdefault(alias, code)
    return index


@lru_cache(maxsize=1024)
def country_code(name: str) -> str | None:
    """The alpha-2 code of a published country name, or ``None`` when it names no single country.

    Tries ``pycountry.countries.lookup`` (names, official names, codes) first, then the same names
    with punctuation and accents ignored ("Tanzania United Republic of"), then ``ALIASES``.
    """
    try:
        return str(pycountry.countries.lookup(name).alpha_2)
    except LookupError:
        return _names().get(normalized(name))
