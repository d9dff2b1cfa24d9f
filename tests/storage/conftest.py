"""Shared storage fixtures: every storage test runs on SQLite and, when
``EPOPT_TEST_POSTGRES_URL`` is set, on PostgreSQL too (a fresh schema per test).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from optimizer.domain.profile_run import NATIVE_COLUMNS, ProfileRun
from optimizer.storage import open_database, upgrade

POSTGRES_URL = os.environ.get("EPOPT_TEST_POSTGRES_URL")

BACKENDS = [
    "sqlite",
    pytest.param(
        "postgres",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(not POSTGRES_URL, reason="EPOPT_TEST_POSTGRES_URL is not set"),
        ],
    ),
]


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[sa.Engine]:
    """An engine on the test PostgreSQL database, used to create and drop test schemas."""
    assert POSTGRES_URL
    url = make_url(POSTGRES_URL).set(drivername="postgresql+psycopg")
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """URL of an empty database: a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'epopt.sqlite3'}"
        return
    admin: sa.Engine = request.getfixturevalue("postgres_admin")
    schema = f"epopt_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = admin.url.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    """An engine on a database migrated to head."""
    upgrade(database_url)
    engine = open_database(database_url)
    yield engine
    engine.dispose()


_BASE_RUN: dict[str, Any] = {
    "model": "meta-llama/Llama-3.1-8B",
    "gpu": "h100_sxm",
    "engine": "vllm",
    "engine_version": "0.8.5",
    "quantization": "fp8",
    "tp": 1,
    "concurrency": 8,
    "isl": 1024,
    "osl": 128,
    "ttft_ms": 50.0,
    "tpot_ms": 9.0,
    "source": "tests",
}


def _key(run: dict[str, Any]) -> str:
    payload = {k: v for k, v in run.items() if k not in ("source", "extra")}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@pytest.fixture
def make_runs() -> Callable[..., pd.DataFrame]:
    """Build a validated native-schema frame (``NATIVE_COLUMNS`` + ``run_key``).

    ``make_runs(n, **columns)``: ``n`` distinct runs (their ``isl`` differs); a column given
    as a list sets one value per row, a scalar sets every row.
    """

    def build(n: int, **columns: Any) -> pd.DataFrame:
        rows = []
        for i in range(n):
            values = {**_BASE_RUN, "isl": 100 + i}
            for name, value in columns.items():
                values[name] = value[i] if isinstance(value, list) else value
            run = ProfileRun.model_validate(values).model_dump(mode="python")
            rows.append({name: getattr(v, "value", v) for name, v in run.items()})
        frame = pd.DataFrame(rows, columns=list(NATIVE_COLUMNS))
        frame["run_key"] = [_key(row) for row in rows]
        return frame

    return build
