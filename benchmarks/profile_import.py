"""Profile ingestion: row counts and how long the bundled reference set takes to land.

Reads the 5,221 measured runs bundled in aiconfigurator-core 0.12.0, validates them
against the native schema, imports them into a fresh SQLite file, then imports them again
(which must add nothing). Times are reported in seconds and as a ratio to the read step,
measured in one run (the machine is shared: compare ratios, not absolute seconds).

Run: python benchmarks/profile_import.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from optimizer.profiles import REFERENCE, import_profiles, read_profiles
from optimizer.storage import count_profile_runs, create_engine_for, upgrade


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        upgrade(url)
        engine = create_engine_for(url)

        started = time.perf_counter()
        runs = read_profiles(REFERENCE)
        read_s = time.perf_counter() - started

        started = time.perf_counter()
        first = import_profiles(REFERENCE, engine)
        first_s = time.perf_counter() - started

        started = time.perf_counter()
        second = import_profiles(REFERENCE, engine)
        second_s = time.perf_counter() - started
        stored = count_profile_runs(engine)
        engine.dispose()

    modes = runs["mode"].value_counts().to_dict()
    print(
        f"reference runs: {len(runs):,} ({modes.get('agg', 0):,} agg, "
        f"{modes.get('disagg', 0):,} disagg), {runs['model'].nunique()} models, "
        f"{runs['gpu'].nunique()} GPUs, {runs['engine'].nunique()} engines"
    )
    print(f"{'step':40} {'seconds':>8} {'x read':>7}")
    print(f"{'read + validate (no database)':40} {read_s:8.2f} {1.0:7.2f}")
    print(
        f"{'first import into SQLite':40} {first_s:8.2f} {first_s / read_s:7.2f}"
        f"   added {first.added:,}, skipped {first.skipped:,}"
    )
    print(
        f"{'second import (idempotent)':40} {second_s:8.2f} {second_s / read_s:7.2f}"
        f"   added {second.added:,}, skipped {second.skipped:,}"
    )
    print(f"rows stored: {stored:,}")


if __name__ == "__main__":
    main()
