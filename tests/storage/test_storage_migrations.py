"""Schema migrations, engine creation and the not-at-head refusal, on every backend."""

from __future__ import annotations

import argparse

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from optimizer.errors import StorageError
from optimizer.resources import bundled_dir
from optimizer.storage import (
    create_engine_for,
    current_revision,
    downgrade,
    head_revision,
    mask_url,
    open_database,
    require_head,
    upgrade,
)
from optimizer.storage.database import VERSION_TABLE
from optimizer.storage.models import Base

TABLES = {"profile_runs", "model_specs", "gpus", "surrogates", "recommendations", "jobs"}


def _tables(url: str) -> set[str]:
    engine = create_engine_for(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_from_empty_creates_every_table_at_head(database_url):
    assert current_revision(database_url) is None
    upgrade(database_url)
    assert current_revision(database_url) == head_revision() == "0002"
    assert _tables(database_url) == TABLES | {VERSION_TABLE}


def test_a_database_from_before_the_version_table_rename_is_adopted(database_url):
    # epopt once kept its revision in Alembic's default table, which optuna also uses
    upgrade(database_url)
    engine = create_engine_for(database_url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP TABLE {VERSION_TABLE}"))
        connection.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        connection.execute(sa.text("INSERT INTO alembic_version VALUES ('0001')"))
    engine.dispose()
    assert current_revision(database_url) == "0001"
    upgrade(database_url)
    assert current_revision(database_url) == head_revision()
    assert "alembic_version" not in _tables(database_url)


def test_another_tools_alembic_version_table_is_left_alone(database_url):
    # optuna's RDB storage keeps its own revision in ``alembic_version``
    engine = create_engine_for(database_url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        connection.execute(sa.text("INSERT INTO alembic_version VALUES ('v3.2.0.a')"))
    engine.dispose()
    assert current_revision(database_url) is None
    upgrade(database_url)
    assert current_revision(database_url) == head_revision()
    engine = create_engine_for(database_url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    engine.dispose()
    assert rows == [("v3.2.0.a",)]


def test_upgrade_twice_is_a_no_op(database_url):
    upgrade(database_url)
    upgrade(database_url)
    assert current_revision(database_url) == head_revision()


def test_downgrade_to_base_and_up_again(database_url):
    upgrade(database_url)
    downgrade(database_url, "base")
    assert current_revision(database_url) is None
    assert _tables(database_url) == {VERSION_TABLE}
    upgrade(database_url)
    assert current_revision(database_url) == head_revision()
    assert _tables(database_url) >= TABLES


def test_migrated_schema_matches_the_models(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "version_table": VERSION_TABLE}
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_migrated_check_constraints_match_the_models(engine):
    # autogenerate does not compare check constraints; compare them by name
    inspector = sa.inspect(engine)
    for table in Base.metadata.sorted_tables:
        expected = {c.name for c in table.constraints if isinstance(c, sa.CheckConstraint)}
        found = {c["name"] for c in inspector.get_check_constraints(table.name)}
        assert found == expected, table.name


def test_migrations_are_found_from_any_working_directory(database_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    upgrade(database_url)
    assert current_revision(database_url) == head_revision()


def test_developer_alembic_ini_upgrades_the_url_given_with_x(database_url):
    ini = bundled_dir("storage") / "alembic.ini"
    config = Config(str(ini), cmd_opts=argparse.Namespace(x=[f"url={database_url}"]))
    command.upgrade(config, "head")
    assert current_revision(database_url) == head_revision()


def test_open_database_refuses_an_empty_database(database_url):
    with pytest.raises(StorageError, match="no epopt schema yet; run `epopt db upgrade`"):
        open_database(database_url)


def test_open_database_refuses_an_unknown_revision(database_url):
    upgrade(database_url)
    engine = create_engine_for(database_url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = 'ffff9999'"))
    with pytest.raises(StorageError, match=r"'ffff9999', which this epopt does not know"):
        require_head(engine)
    engine.dispose()


def test_open_database_refuses_an_older_revision(database_url):
    upgrade(database_url, "0001")
    with pytest.raises(
        StorageError, match=r"at schema revision '0001', this epopt needs '0002'; run `epopt db"
    ):
        open_database(database_url)


def test_open_database_auto_upgrades_when_asked(database_url):
    engine = open_database(database_url, auto_upgrade=True)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_open_database_auto_upgrades_only_the_embedded_default(tmp_path, monkeypatch):
    default = f"sqlite:///{tmp_path / 'default' / 'epopt.sqlite3'}"
    monkeypatch.setattr("optimizer.settings.default_database_url", lambda: default)
    engine = open_database(default)
    assert current_revision(engine) == head_revision()
    engine.dispose()
    with pytest.raises(StorageError, match="epopt db upgrade"):
        open_database(f"sqlite:///{tmp_path / 'other.sqlite3'}")


def test_upgrade_to_an_unknown_revision_is_a_storage_error(database_url):
    with pytest.raises(StorageError, match="cannot upgrade"):
        upgrade(database_url, "nonexistent")
    assert current_revision(database_url) is None


def test_sqlite_engine_creates_its_directory_and_enforces_foreign_keys(tmp_path):
    path = tmp_path / "deep" / "er" / "db.sqlite3"
    engine = create_engine_for(f"sqlite:///{path}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()
    assert path.parent.is_dir()


def test_sqlite_home_directory_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    engine = create_engine_for("sqlite:///~/sub/db.sqlite3")
    assert engine.url.database == str(tmp_path / "sub" / "db.sqlite3")
    assert (tmp_path / "sub").is_dir()
    engine.dispose()


def test_sqlite_rollback_undoes_ddl_and_dml(tmp_path):
    engine = create_engine_for(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with pytest.raises(RuntimeError), engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        connection.exec_driver_sql("INSERT INTO t VALUES (1)")
        raise RuntimeError("abort")
    assert "t" not in sa.inspect(engine).get_table_names()
    engine.dispose()


def test_plain_postgresql_urls_use_psycopg():
    for url in ("postgresql://u:p@127.0.0.1/db", "postgres://u:p@127.0.0.1/db"):
        engine = create_engine_for(url)
        assert engine.dialect.driver == "psycopg"
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "mysql://u:p@127.0.0.1/db",
            r"unsupported backend 'mysql' \(allowed: sqlite, postgresql\)",
        ),
        ("not a url", "is not a valid URL"),
    ],
)
def test_bad_urls_are_storage_errors(url, message):
    with pytest.raises(StorageError, match=message):
        create_engine_for(url)


def test_unreachable_server_is_a_storage_error():
    # a port on loopback that nothing listens on: connection refused at once
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://epopt:secret@127.0.0.1:{port}/epopt"
    with pytest.raises(StorageError, match="reading the schema revision") as caught:
        current_revision(url)
    assert "secret" not in str(caught.value)


def test_mask_url_hides_the_password():
    masked = mask_url("postgresql+psycopg://epopt:s3cret@127.0.0.1:5432/epopt")
    assert masked == "postgresql+psycopg://epopt:***@127.0.0.1:5432/epopt"


def _as_stored_before_0002(runs):
    """The reference runs as the importer stored them before it mapped squared layouts."""
    import pandas as pd

    from optimizer.profiles.run_key import compute_run_keys

    old = runs.copy()
    for position, extra in old["extra"].items():
        if not extra or extra.get("layout_from") != "squared_layout":
            continue
        old.loc[position, "tp"] = extra["tp_size"]
        old.loc[position, "dp"] = max(extra.get("attention_dp_size", 1), 1)
        old.loc[position, "ep"] = max(extra["moe_ep_size"], 1)
        old.at[position, "extra"] = {
            k: v
            for k, v in extra.items()
            if k not in ("tp_size", "moe_ep_size", "layout_from")
            and not (k == "attention_dp_size" and v != 0)
        }
    old["run_key"] = compute_run_keys(old)
    return pd.DataFrame(old)


def test_0002_maps_stored_squared_layouts_and_back(database_url):
    from optimizer.profiles import load_reference_profiles
    from optimizer.storage import insert_profile_runs, load_profile_runs

    runs = load_reference_profiles()
    squared = [bool(e) and e.get("layout_from") == "squared_layout" for e in runs["extra"]]
    assert sum(squared) == 414
    upgrade(database_url, "0001")
    engine = create_engine_for(database_url)
    try:
        insert_profile_runs(engine, _as_stored_before_0002(runs))
        upgrade(engine)
        stored = load_profile_runs(engine).set_index("source_id")
        # every run as the importer now maps it: layout and run key; a re-import adds nothing
        expected = runs.set_index("source_id")
        for column in ("tp", "dp", "ep", "run_key"):
            assert (stored.loc[expected.index, column] == expected[column]).all(), column
        assert insert_profile_runs(engine, runs).added == 0
        mapped = stored.loc[runs["source_id"][squared]]
        assert all(e["layout_from"] == "squared_layout" for e in mapped["extra"])
        downgrade(engine, "0001")
        before = load_profile_runs(engine).set_index("source_id")
        old = _as_stored_before_0002(runs).set_index("source_id")
        for column in ("tp", "dp", "ep", "run_key"):
            assert (before.loc[old.index, column] == old[column]).all(), column
        assert not any(e and "layout_from" in e for e in before["extra"])
    finally:
        engine.dispose()


def test_0002_downgrade_of_a_fresh_import(database_url):
    from optimizer.profiles import load_reference_profiles
    from optimizer.storage import insert_profile_runs, load_profile_runs

    runs = load_reference_profiles()
    upgrade(database_url)
    engine = create_engine_for(database_url)
    try:
        insert_profile_runs(engine, runs)
        downgrade(engine, "0001")
        before = load_profile_runs(engine).set_index("source_id")
        old = _as_stored_before_0002(runs).set_index("source_id")
        for column in ("tp", "dp", "ep", "run_key"):
            assert (before.loc[old.index, column] == old[column]).all(), column
    finally:
        engine.dispose()
