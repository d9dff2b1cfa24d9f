"""Packaging: public exports are complete, and an installed wheel carries its data folders."""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

import optimizer

REPO = Path(__file__).resolve().parents[1]


def _modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(optimizer.__path__, prefix="optimizer."):
        if ".cli" in info.name or "._bundled" in info.name:
            continue
        names.append(info.name)
    return names


@pytest.mark.parametrize("name", _modules())
def test_every_module_declares_all_and_its_names_exist(name):
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} has no __all__"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names missing attributes: {missing}"


def test_cli_help_is_fast_to_import():
    # heavy libraries must not load just to print help
    code = (
        "import sys, optimizer.cli.main; "
        "print(sorted(m for m in ('pandas', 'sqlalchemy', 'alembic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    from hatchling.builders.wheel import WheelBuilder

    out = tmp_path_factory.mktemp("wheel")
    builder = WheelBuilder(str(REPO))
    return Path(next(builder.build(directory=str(out), versions=["standard"])))


def test_wheel_contains_data_folders(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "optimizer/_bundled/search_spaces/vllm.yaml",
        "optimizer/_bundled/search_spaces/sglang.yaml",
        "optimizer/_bundled/search_spaces/trtllm.yaml",
        "optimizer/_bundled/storage/migrations/env.py",
        "optimizer/catalog/gpus.yaml",
        "optimizer/py.typed",
    ):
        assert required in names, f"{required} missing from the wheel"
    assert any(n.startswith("optimizer/_bundled/storage/migrations/versions/") for n in names)
    assert any(n.startswith("optimizer/_bundled/profiles/") for n in names)


@pytest.mark.slow
def test_installed_wheel_runs_outside_the_checkout(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True,
    )
    env = {**os.environ, "EPOPT_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    env.pop("PYTHONPATH", None)
    where = subprocess.run(
        [
            python,
            "-c",
            "from optimizer.resources import bundled_dir; print(bundled_dir('search_spaces'))",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert str(env_dir) in where and "_bundled" in where
    epopt = env_dir / "bin" / "epopt"
    result = subprocess.run(
        [
            epopt,
            "space",
            "--engine",
            "vllm",
            "--model",
            "meta-llama/Llama-3.1-8B",
            "--gpu",
            "h100_sxm",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "feasible" in result.stdout
    upgraded = subprocess.run(
        [epopt, "db", "upgrade"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert upgraded.returncode == 0, upgraded.stderr
