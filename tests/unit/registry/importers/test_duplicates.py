"""Projects registered under two programmes are flagged, with the reason."""

from __future__ import annotations

import dataclasses

from neutralize.registry.importers.duplicates import cross_programme_duplicates
from neutralize.registry.importers.gold_standard import parse_gold_standard_export
from neutralize.registry.importers.records import ImportedProject, Programme
from neutralize.registry.importers.verra import parse_verra_export
from tests.unit.registry.importers.samples import sample

BASE = ImportedProject(
    programme=Programme.VERRA,
    project_id="1",
    name="Lake Turkana Wind Power",
    country_name="Kenya",
    country_code="KE",
    developer=None,
    project_type=None,
    methodology=None,
    sustainable_development_goals=(),
    additional_certifications=(),
    programme_of_activities=None,
    poa_id=None,
    cross_references=(),
    source_line=2,
)


def project(programme: Programme, project_id: str, **changes: object) -> ImportedProject:
    return dataclasses.replace(BASE, programme=programme, project_id=project_id, **changes)  # type: ignore[arg-type]


def summary(pairs: list[tuple[ImportedProject, ImportedProject, str]]) -> list[tuple[str, str, str]]:
    return [
        (f"{a.programme.value} {a.project_id}", f"{b.programme.value} {b.project_id}", why)
        for a, b, why in pairs
    ]


def test_the_sample_exports_share_three_projects() -> None:
    # Given the parsed Verra and Gold Standard samples
    projects = [
        *parse_verra_export(sample("verra_export.csv")).projects,
        *parse_gold_standard_export(sample("gold_standard_retirements.csv")).projects,
    ]

    # When duplicates are looked for
    pairs = cross_programme_duplicates(projects)

    # Then the name match and both explicit references are flagged, Gold Standard first in each pair
    assert summary(pairs) == [
        ("GS 2429", "VCS 2250", "same name and country; no developer published by VCS"),
        ("GS 7080", "VCS 3110", "VCS 3110 names GS 7080"),
        ("GS 9001", "VCS 1340", "GS 9001 names VCS 1340"),
    ]


def test_names_match_across_case_accents_punctuation_and_programme_ids() -> None:
    # Given the same project written differently under two programmes, countries not mapped to codes
    verra = project(
        Programme.VERRA,
        "10",
        name="GS5304 Côte-Nord  wind farm",
        country_name="Cote d'Ivoire",
        country_code=None,
    )
    gold = project(
        Programme.GOLD_STANDARD,
        "20",
        name="Cote Nord Wind Farm",
        country_name="Côte d'Ivoire",
        country_code=None,
        developer="Example Wind",
    )

    # When duplicates are looked for
    pairs = cross_programme_duplicates([verra, gold])

    # Then they are paired
    assert summary(pairs) == [("GS 20", "VCS 10", "same name and country; no developer published by VCS")]


def test_developers_must_agree_when_both_are_published() -> None:
    # Given same-named projects whose developers differ, and a pair whose developers differ only by suffix
    a = project(Programme.VERRA, "1", developer="Example Wind Ltd")
    b = project(Programme.GOLD_STANDARD, "2", developer="Other Energy Inc.")
    c = project(Programme.VERRA, "3", name="Hydro", developer="Example Hydro Limited")
    d = project(Programme.GOLD_STANDARD, "4", name="Hydro", developer="EXAMPLE HYDRO LTD.")

    # When duplicates are looked for
    pairs = cross_programme_duplicates([a, b, c, d])

    # Then only the pair with the same developer is flagged
    assert summary(pairs) == [("GS 4", "VCS 3", "same name, country and developer")]


def test_the_same_name_in_another_country_is_not_a_duplicate() -> None:
    # Given same-named projects in Kenya and Uganda
    a = project(Programme.VERRA, "1")
    b = project(Programme.GOLD_STANDARD, "2", country_name="Uganda", country_code="UG")

    # When duplicates are looked for
    # Then nothing is flagged
    assert cross_programme_duplicates([a, b]) == []


def test_projects_of_one_programme_are_never_paired() -> None:
    # Given two Verra projects that look alike and name each other
    a = project(Programme.VERRA, "1", cross_references=("VCS:2",))
    b = project(Programme.VERRA, "2")

    # When duplicates are looked for
    # Then nothing is flagged
    assert cross_programme_duplicates([a, b]) == []


def test_a_shared_cdm_project_pairs_projects_and_reasons_are_joined() -> None:
    # Given projects with different names that both name CDM 1234, one also naming the other
    a = project(Programme.VERRA, "5", name="A", cross_references=("CDM:1234", "GS:6"))
    b = project(Programme.GOLD_STANDARD, "6", name="B", cross_references=("CDM:1234",))

    # When duplicates are looked for
    pairs = cross_programme_duplicates([a, b])

    # Then the pair is listed once with every reason
    assert summary(pairs) == [("GS 6", "VCS 5", "VCS 5 names GS 6; both name CDM 1234")]


def test_a_reference_to_an_unknown_project_flags_nothing() -> None:
    # Given a project naming a Gold Standard id that is not among the projects
    a = project(Programme.VERRA, "5", name="A", cross_references=("GS:999",))
    b = project(Programme.GOLD_STANDARD, "6", name="B")

    # When duplicates are looked for
    # Then nothing is flagged
    assert cross_programme_duplicates([a, b]) == []
