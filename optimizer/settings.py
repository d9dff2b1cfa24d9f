"""Settings: one pydantic-settings class, ``EPOPT_`` environment prefix, passed in, never global."""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_data_dir
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "default_database_url"]


def default_database_url() -> str:
    """The embedded default: a SQLite file in the user's data directory."""
    return f"sqlite:///{Path(user_data_dir('epopt', appauthor=False)) / 'epopt.sqlite3'}"


class Settings(BaseSettings):
    """Everything a user can configure without code.

    Environment variables: ``EPOPT_DATABASE_URL``, ``EPOPT_PRICES_FILE``,
    ``EPOPT_GPU_PRICES`` (JSON object, e.g. ``{"h100_sxm": 2.10}``).

    Example:
        >>> Settings(database_url="sqlite:///tmp.db").database_url
        'sqlite:///tmp.db'
    """

    model_config = SettingsConfigDict(env_prefix="EPOPT_", extra="ignore")

    database_url: str = Field(default_factory=default_database_url)
    prices_file: Path | None = Field(
        default=None,
        description="YAML or JSON file mapping GPU id to a $/GPU-hour contract price.",
    )
    gpu_prices: dict[str, float] = Field(
        default_factory=dict,
        description="GPU id -> $/GPU-hour overrides; wins over prices_file and the catalog.",
    )
