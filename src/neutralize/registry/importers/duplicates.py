"""Projects that appear under two programmes, so their reductions could be credited twice.

DESIGN.md §4 ("never counted twice"): a project registered in two programmes is flagged, not
rejected; a person decides. Two projects of different programmes are flagged when

- one names the other's id in its export (Verra Additional Certifications, Gold Standard Note),
  e.g. "VCS 1340" in a Gold Standard note;
- both name the same CDM project (a CDM serial or a "CDM 1234" mention); or
- they have the same name and country, after normalising case, accents, punctuation and
  programme-id tokens such as "GS10789", and the same developer where both exports publish one.
  The Verra export publishes no developer, so Verra-to-Gold-Standard matches rest on name and
  country; the reason says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from neutralize.registry.importers.countries import ascii_fold, normalized
from neutralize.registry.importers.records import ImportedProject

Key = tuple[str, str]  # (programme code, project id)
Pair = tuple[ImportedProject, ImportedProject, str]

_PROGRAMME_ID = re.compile(r"^(?:gs|vcs|cdm)\d+$")
_COMPANY_SUFFIXES = frozenset(
    {"ltd", "limited", "inc", "llc", "plc", "pvt", "private", "gmbh", "ag", "sa", "bv", "co", "corp", "srl"}
)


def cross_programme_duplicates(projects: Sequence[ImportedProject]) -> list[Pair]:
    """Every pair of projects of different programmes that look like one project, with the reason.

    Each pair is listed once, ordered by (programme, project id), the first element sorting first;
    when several signs point to the same pair their reasons are joined with "; ".
    """
    unique = {_key(p): p for p in reversed(projects)}  # the first of repeated (programme, id) wins
    reasons: dict[tuple[Key, Key], list[str]] = {}
    for a, b, reason in (*_named(unique), *_shared_cdm(unique), *_same_identity(unique.values())):
        if a.programme == b.programme:
            continue
        first, second = sorted((a, b), key=_order)
        reasons.setdefault((_key(first), _key(second)), []).append(reason)
    ordered = sorted(reasons.items(), key=lambda item: (_rank(item[0][0]), _rank(item[0][1])))
    return [
        (unique[first], unique[second], "; ".join(dict.fromkeys(found))) for (first, second), found in ordered
    ]


def _named(unique: dict[Key, ImportedProject]) -> Iterable[Pair]:
    for project in unique.values():
        for reference in project.cross_references:
            programme, _, number = reference.partition(":")
            other = unique.get((programme, number))
            if other is not None:
                yield project, other, f"{_label(project)} names {programme} {number}"


def _shared_cdm(unique: dict[Key, ImportedProject]) -> Iterable[Pair]:
    by_cdm: dict[str, list[ImportedProject]] = {}
    for project in unique.values():
        for reference in project.cross_references:
            if reference.startswith("CDM:"):
                by_cdm.setdefault(reference, []).append(project)
    for reference, members in by_cdm.items():
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                yield a, b, f"both name CDM {reference.removeprefix('CDM:')}"


def _same_identity(projects: Iterable[ImportedProject]) -> Iterable[Pair]:
    groups: dict[tuple[str, str], list[ImportedProject]] = {}
    for project in projects:
        groups.setdefault((_name_key(project.name), _country_key(project)), []).append(project)
    for members in groups.values():
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                if a.programme == b.programme:
                    continue
                reason = _identity_reason(a, b)
                if reason is not None:
                    yield a, b, reason


def _identity_reason(a: ImportedProject, b: ImportedProject) -> str | None:
    if a.developer and b.developer:
        if _developer_key(a.developer) != _developer_key(b.developer):
            return None
        return "same name, country and developer"
    unpublished = sorted({p.programme.value for p in (a, b) if not p.developer})
    return f"same name and country; no developer published by {' or '.join(unpublished)}"


def _name_key(name: str) -> str:
    return " ".join(w for w in _words(name) if not _PROGRAMME_ID.match(w))


def _developer_key(developer: str) -> str:
    return " ".join(w for w in _words(developer) if w not in _COMPANY_SUFFIXES)


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[^0-9a-z]+", ascii_fold(text)) if w]


def _country_key(project: ImportedProject) -> str:
    return project.country_code or normalized(project.country_name)


def _key(project: ImportedProject) -> Key:
    return (project.programme.value, project.project_id)


def _rank(key: Key) -> tuple[str, int]:
    return (key[0], int(key[1]))


def _order(project: ImportedProject) -> tuple[str, int]:
    return _rank(_key(project))


def _label(project: ImportedProject) -> str:
    return f"{project.programme.value} {project.project_id}"
