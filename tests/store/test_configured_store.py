"""The ``store`` section: sqlite or postgres, its problems named, the store it opens."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from connector.config_schema import StoreConfig
from connector.store import open_configured_store
from connector.store.api import (
    PlaintextCipherForTests,
)
from connector.store.postgres import PostgresStore
from connector.store.sqlite import SqliteStore

KEY = {"at_rest_key_env": "CONNECTOR_AT_REST_KEY"}


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"type": "sqlite"}, "needs path"),
        ({"type": "sqlite", "path": "s.db", "dsn": "host=db"}, "dsn is for type: postgres"),
        ({"type": "postgres"}, "one of dsn, dsn_env or dsn_file"),
        ({"type": "postgres", "dsn": "host=db", "dsn_env": "PG_DSN"}, "one of dsn"),
        ({"type": "postgres", "dsn": "host=db", "path": "s.db"}, "path is for type: sqlite"),
        ({"type": "postgres", "dsn": "host=db password=hunter2"}, "holds a password"),
        ({"type": "postgres", "dsn": "postgresql://u:hunter2@db/x"}, "holds a password"),
        ({"type": "postgres", "dsn": "host=db", "schema_name": "Bad-Name"}, "schema_name"),
        ({"type": "postgres", "dsn": "host=db", "pool_size": 0}, "pool_size"),
    ],
)
def test_store_section_problems_are_named(section: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        StoreConfig.model_validate({**KEY, **section})


def test_a_postgres_store_opens_from_the_environment(
    pg_dsn: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_STORE_DSN", pg_dsn)
    section = StoreConfig.model_validate(
        {**KEY, "type": "postgres", "dsn_env": "TEST_STORE_DSN", "schema_name": pg_schema}
    )
    store = open_configured_store(section, PlaintextCipherForTests())
    try:
        assert isinstance(store, PostgresStore)
        assert "password" not in store.describe() and pg_schema in store.describe()
    finally:
        store.close()


def test_a_sqlite_store_opens_at_its_path(tmp_path: Path) -> None:
    section = StoreConfig.model_validate({**KEY, "path": str(tmp_path / "state" / "s.sqlite")})
    store = open_configured_store(section, None)
    try:
        assert isinstance(store, SqliteStore) and store.try_hold_duty("inbox:A")
    finally:
        store.close()
