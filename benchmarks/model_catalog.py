"""Model catalog accuracy and coverage.

Prints, for the models with published parameter counts, what the catalog computes from
their Hugging Face config and the relative error; then how many bundled configs load and
why the others are reported unsupported.

Run: python benchmarks/model_catalog.py
"""

from __future__ import annotations

import collections
import time

from optimizer.catalog.models import catalog_report, load_model_spec
from optimizer.catalog.published import PUBLISHED_PARAMETERS


def main() -> None:
    print(
        f"{'model':32} {'total (B)':>10} {'published':>10} {'error':>8}"
        f" {'active (B)':>11} {'published':>10} {'error':>8}"
    )
    for entry in PUBLISHED_PARAMETERS:
        spec = load_model_spec(entry.model)
        total_err = 100 * (spec.total_params / entry.total - 1)
        line = (
            f"{entry.model:32} {spec.total_params / 1e9:10.3f} "
            f"{entry.total / 1e9:10.2f} {total_err:+7.2f}%"
        )
        if entry.active is not None:
            active_err = 100 * (spec.active_params / entry.active - 1)
            line += (
                f" {spec.active_params / 1e9:11.3f} {entry.active / 1e9:10.2f} {active_err:+7.2f}%"
            )
        print(line)

    started = time.perf_counter()
    report = catalog_report()
    elapsed = time.perf_counter() - started
    loaded = [e for e in report if e.spec is not None]
    reasons = collections.Counter(e.reason.split(":")[0] for e in report if e.spec is None)
    print(
        f"\nbundled configs: {len(report)}; loaded {len(loaded)}; "
        f"unsupported {len(report) - len(loaded)} (catalog built in {elapsed:.2f} s)"
    )
    for reason, count in reasons.most_common():
        print(f"  {count:3d}  {reason}")


if __name__ == "__main__":
    main()
