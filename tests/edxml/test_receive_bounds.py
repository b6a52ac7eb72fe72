"""Big packages as hubs build them (thousands of TraceHeaders, recipients, unknown hub
elements, attachments without payload): the receive level's work and output stay bounded.
At most MAX_WARNINGS warnings and MAX_COLLECTED problems, plus one line counting the rest;
beyond MAX_SAME_CHECKED same-named elements, one warning says only the first were checked
(libxml2 took minutes to collect 60 000 errors; speed itself is measured in bench/).
"""

from __future__ import annotations

import pytest

from connector.edxml import build_package, check_package
from connector.edxml.conformance import MAX_SAME_CHECKED, MAX_WARNINGS
from connector.edxml.reader import MAX_COLLECTED
from tests.edxml.factories import edoc

N = MAX_SAME_CHECKED + 1500

UNITS = {
    "TraceHeader, bad timestamp": (
        "<edXML:TraceHeaderList>",
        "<edXML:TraceHeader><edXML:OrganId>000.00.00.G22</edXML:OrganId>"
        "<edXML:Timestamp>2019-01-{i:05d}</edXML:Timestamp></edXML:TraceHeader>\n", True),
    "To without OrganId": ("<edXML:To>", "<edXML:To><edXML:OrganName>x</edXML:OrganName>"
                           "</edXML:To>\n", True),
    "unknown hub element": ("<edXML:To>", "<edXML:HubHop>{i}</edXML:HubHop>\n", True),
    "Reference without payload": ("<edXML:Reference>", "<edXML:Reference><edXML:ContentId>"
                                  "cid:x{i}</edXML:ContentId></edXML:Reference>\n", False),
}


@pytest.mark.parametrize("case", sorted(UNITS))
def test_thousands_of_elements_give_bounded_output(case: str) -> None:
    anchor, unit, received = UNITS[case]
    text = build_package(edoc()).decode()
    assert anchor in text
    blob = "".join(unit.format(i=i) for i in range(N))
    # Inside a list element: after its start tag; otherwise before the first such element.
    data = text.replace(anchor, anchor + blob if anchor.endswith("List>") else blob + anchor,
                        1).encode()
    result = check_package(data)
    assert result.ok is received, [str(p) for p in result.problems[:3]]
    assert len(result.problems) <= MAX_COLLECTED + 1
    assert len(result.warnings) <= MAX_WARNINGS + MAX_COLLECTED + 3
    if not received:
        assert "more" in result.problems[-1].message
