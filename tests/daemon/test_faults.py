"""CONNECTOR_FAULT: crash points for tests, inert when unset."""

from __future__ import annotations

import pytest

from connector.daemon.faults import InjectedFault, from_environment


def test_unset_means_no_hook() -> None:
    assert from_environment({}) is None


def test_raise_fires_on_the_nth_time_only() -> None:
    hook = from_environment({"CONNECTOR_FAULT": "after_deliver:raise:2"})
    assert hook is not None
    hook("after_ack")
    hook("after_deliver")  # the first time passes
    with pytest.raises(InjectedFault):
        hook("after_deliver")
    hook("after_deliver")  # and only once


def test_injected_fault_is_not_an_exception_handlers_would_absorb() -> None:
    assert not issubclass(InjectedFault, Exception)


@pytest.mark.parametrize("spec", ["nowhere:kill", "after_ack:explode", "after_ack:raise:x"])
def test_bad_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        from_environment({"CONNECTOR_FAULT": spec})
