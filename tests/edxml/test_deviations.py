"""The receive level against the deviation corpus generated from our schemas.

Every case gets its expected outcome: received with a warning naming the element, or refused
naming what receiving needs (``RECEIVE_NEEDS``); a received case maps back to a local record.
Nothing outside ``NEEDED_ELEMENTS`` ever refuses a package.
"""

from __future__ import annotations

import functools

import pytest

from connector.edxml import EdocPackage, check_package
from connector.edxml.conformance import NEEDED_ELEMENTS, RECEIVE_NEEDS
from connector.edxml.model import QCVN_ELEMENTS
from connector.edxml.schema import CheckResult
from connector.edxml.xsdmodel import known_names
from connector.mapping import MappingSet, load_directory, load_mappings
from tests.edxml.deviations import Case, corpus
from tests.mapping.conftest import DIRECTORY_FILE, MAPPINGS
from tests.samples import SAMPLES_DIR

CASES = corpus()
MAPPING_NAMES = sorted(p.stem for p in MAPPINGS.glob("*.yaml"))
BY_NAME = {c.name: c for c in CASES}
PARAMS = (
    [pytest.param(c, id=c.name) for c in CASES]
    if CASES
    else [pytest.param(None, marks=pytest.mark.skip(reason=f"no samples in {SAMPLES_DIR}"))]
)


@functools.cache
def _mappings() -> MappingSet:
    return load_mappings(MAPPINGS, load_directory(DIRECTORY_FILE))


@functools.cache
def _checked(name: str) -> CheckResult:
    return check_package(BY_NAME[name].data)


def _names(result: CheckResult, element: str) -> bool:
    pool = result.warnings if result.ok else result.problems
    return any(p.element == element or (not result.ok and element in p.message) for p in pool)


@pytest.mark.parametrize("case", PARAMS)
def test_case_gets_its_expected_outcome(case: Case) -> None:
    result = _checked(case.name)
    expected = case.expected
    if not expected.received:
        assert not result.ok, f"{case.name}: received, expected a refusal"
        assert all(str(p) for p in result.problems)
        if expected.element:
            assert _names(result, expected.element), [str(p) for p in result.problems]
        return
    assert result.ok, f"{case.name}: refused: {[str(p) for p in result.problems]}"
    if expected.element:
        assert _names(result, expected.element), [str(w) for w in result.warnings]
    assert all(w.reason == "deviation" for w in result.warnings)
    package = result.package
    assert package is not None and package.deviations == tuple(result.warnings)
    for name in MAPPING_NAMES:  # every shipped mapping maps it back (map --reverse)
        fmt = _mappings().get(name)
        local = (fmt.package_to_record(package) if isinstance(package, EdocPackage)
                 else fmt.status_to_event(package))
        assert local.body, name


def test_corpus_is_large_and_covers_every_family() -> None:
    if not CASES:
        pytest.skip(f"no samples in {SAMPLES_DIR}")
    assert len(CASES) > 500 and len(BY_NAME) == len(CASES)  # names are unique
    kinds = {c.name.rsplit(":", 1)[-1] for c in CASES}
    for family in ("missing", "repeated", "optional-removed", "maxLength20", "pattern",
                   "enumeration", "maxInclusive4", "unknown-element", "foreign-namespace",
                   "reordered", "crlf", "bom", "stray-bytes", "prefix-q102", "no-prefix",
                   "undeclared-prefix"):
        assert family in kinds, family
    assert {c.expected.received for c in CASES} == {True, False}


def test_only_needed_elements_refuse() -> None:
    """A refusal always names something the receive table lists as needed."""
    for case in CASES:
        if not case.expected.received:
            result = _checked(case.name)
            for problem in result.problems:
                assert problem.element is None or problem.element in NEEDED_ELEMENTS, (
                    case.name, str(problem))


def test_receive_table_and_labels_follow_the_schemas() -> None:
    assert known_names() == QCVN_ELEMENTS
    assert NEEDED_ELEMENTS <= QCVN_ELEMENTS
    assert all(need.why and need.field for need in RECEIVE_NEEDS)
