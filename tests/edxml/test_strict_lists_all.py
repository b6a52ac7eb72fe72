"""``connector validate --strict`` lists every problem of a file: each departure the receive
level finds (its structural pass and its value checks) is named by the strict report too.
Generated from the deviation corpus: the first case of every family for every sample, and
one file carrying several problems in one element (xmlschema stops at the first there).
"""

from __future__ import annotations

import pytest

from connector.edxml.conformance import deviations
from connector.edxml.strict import strict_problems
from connector.edxml.xmlsafe import parse_untrusted
from tests.edxml.deviations import Case, corpus


def _one_per_family() -> list[Case]:
    seen: set[tuple[str, str]] = set()
    chosen = []
    for case in corpus():
        sample, family = case.name.split(":", 1)[0], case.name.rsplit(":", 1)[-1]
        if case.expected.received and (sample, family) not in seen:
            seen.add((sample, family))
            chosen.append(case)
    return chosen


CASES = _one_per_family()


@pytest.mark.parametrize("case", CASES or [pytest.param(None, marks=pytest.mark.skip(
    reason="no samples"))], ids=[c.name for c in CASES] or None)
def test_strict_names_every_departure(case: Case) -> None:
    root = parse_untrusted(case.data)
    kind = "status" if root.find(".//{*}StatusCode") is not None else "edoc"
    strict = strict_problems(case.data)
    for warning in deviations(root, kind):
        if warning.element is None:
            continue
        assert any(
            p.element == warning.element or warning.element in p.message
            for p in strict if p.line == warning.line
        ), (str(warning), [str(p) for p in strict])
