"""`epopt db upgrade | current | info`, in process and as a real console script."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optimizer.cli.main import app

runner = CliRunner()


def _epopt() -> list[str]:
    beside_python = Path(sys.executable).with_name("epopt")
    if beside_python.exists():
        return [str(beside_python)]
    found = shutil.which("epopt")
    assert found, "the epopt console script is not installed"
    return [found]


def test_upgrade_current_and_info_with_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'nested' / 'epopt.sqlite3'}"
    before = runner.invoke(app, ["db", "current", "--url", url])
    assert before.exit_code == 0, before.output
    assert "none (no epopt schema; run `epopt db upgrade`)" in before.output

    first = runner.invoke(app, ["db", "upgrade", "--url", url])
    assert first.exit_code == 0, first.output
    assert "upgraded from empty to 0002" in first.output
    assert (tmp_path / "nested" / "epopt.sqlite3").is_file()

    again = runner.invoke(app, ["db", "upgrade", "--url", url])
    assert "already at revision 0002" in again.output

    now = runner.invoke(app, ["db", "current", "--url", url])
    assert now.output.strip() == "0002 (head)"

    info = runner.invoke(app, ["db", "info", "--url", url])
    assert info.exit_code == 0, info.output
    assert "backend: sqlite" in info.output
    assert "revision: 0002 (head)" in info.output
    assert "rows in profile_runs: 0" in info.output
    assert "rows in jobs: 0" in info.output


def test_info_on_an_empty_database_says_to_upgrade(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    info = runner.invoke(app, ["db", "info", "--url", url])
    assert info.exit_code == 0, info.output
    assert "revision: none (no epopt schema; run `epopt db upgrade`)" in info.output
    assert "rows in" not in info.output


@pytest.mark.postgres
@pytest.mark.skipif(
    not os.environ.get("EPOPT_TEST_POSTGRES_URL"), reason="EPOPT_TEST_POSTGRES_URL is not set"
)
def test_info_masks_the_postgres_password():
    from sqlalchemy.engine import make_url

    url = os.environ["EPOPT_TEST_POSTGRES_URL"]
    password = make_url(url).password
    info = runner.invoke(app, ["db", "info", "--url", url])
    assert info.exit_code == 0, info.output
    assert "backend: postgresql" in info.output
    assert ":***@" in info.output
    assert not password or password not in info.output


def test_console_script_upgrades_the_database_from_the_environment(tmp_path):
    database = tmp_path / "data" / "epopt.sqlite3"
    env = {**os.environ, "EPOPT_DATABASE_URL": f"sqlite:///{database}"}
    upgraded = subprocess.run(
        [*_epopt(), "db", "upgrade"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert upgraded.returncode == 0, upgraded.stderr
    assert "upgraded from empty to 0002" in upgraded.stdout
    assert database.is_file()
    current = subprocess.run(
        [*_epopt(), "db", "current"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert current.stdout.strip() == "0002 (head)"


def test_console_script_reports_storage_errors_with_exit_code_3(tmp_path):
    failed = subprocess.run(
        [*_epopt(), "db", "upgrade", "--url", "mysql://user:pw@127.0.0.1/db"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 3
    assert failed.stderr.startswith("error: ")
    assert "unsupported backend 'mysql'" in failed.stderr
    assert "Traceback" not in failed.stderr
