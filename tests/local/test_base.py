"""The local-side contract: the key a local system deduplicates deliveries by."""

from __future__ import annotations

from connector.local.base import DeliveryKind, LocalDelivery, dedupe_key


def _delivery(**headers: str) -> LocalDelivery:
    return LocalDelivery("in-4", DeliveryKind.DOCUMENT, b"{}", "application/json",
                         headers=headers)


def test_the_hub_id_is_the_dedupe_key_not_the_store_counter() -> None:
    assert dedupe_key(_delivery(**{"hub-id": "a1b2"})) == "a1b2"


def test_one_package_for_two_of_our_organisations_gives_two_keys() -> None:
    keys = {dedupe_key(_delivery(**{"hub-id": "a1b2", "organ-id": organ}))
            for organ in ("000.00.00.H01", "000.00.00.H02")}
    assert keys == {"a1b2@000.00.00.H01", "a1b2@000.00.00.H02"}


def test_without_a_hub_id_the_delivery_id_stands() -> None:
    assert dedupe_key(_delivery()) == "in-4"
    assert dedupe_key(_delivery(**{"hub-id": ""})) == "in-4"
