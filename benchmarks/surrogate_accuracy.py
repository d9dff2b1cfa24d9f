"""Accuracy and speed of the learned surrogate on the bundled reference runs.

Prints MAPE, median APE, median signed error (negative: predicted too low) and
90 %-interval coverage of TTFT and TPOT for the unseen-configuration, unseen
engine/format (of a measured model and GPU), leave-one-model-out and leave-one-GPU-out
splits, the prior alone, and the aiconfigurator comparison rows (model held out), then
the time to fit on all aggregated runs and to predict 10,000 rows.

Usage:
    python benchmarks/surrogate_accuracy.py \
        [--splits unseen,family,lomo,logo,prior,aiconfigurator]
"""

from __future__ import annotations

import argparse
import sys
import time

from optimizer.profiles import load_reference_profiles
from optimizer.surrogate import (
    aiconfigurator_rows,
    dedupe_runs,
    evaluate,
    evaluation_runs,
    format_table,
)
from optimizer.surrogate.evaluation import repeat_noise, time_surrogate

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", default="unseen,family,lomo,logo,prior,aiconfigurator")
    parser.add_argument("--no-timing", action="store_true", help="skip the fit/predict timing")
    args = parser.parse_args(argv)

    runs = load_reference_profiles()
    agg = runs[runs["mode"] == "agg"]
    deduped = dedupe_runs(agg)
    kept, left_out = evaluation_runs(agg)
    print(
        f"aggregated runs: {len(agg)}, after removing exact duplicates: {len(deduped)}, "
        f"and copies under another name of the same architecture: "
        f"{len(kept) + len(left_out)}; "
        f"left out {len(left_out)} whose recorded layout no engine can serve; "
        f"evaluated: {len(kept)}; aiconfigurator comparison rows: "
        f"{int(aiconfigurator_rows(kept).sum())}"
    )
    for reason, count in left_out.value_counts().items():
        print(f"  left out {count:3d}: {reason}")
    start = time.perf_counter()
    results = evaluate(
        agg,
        splits=tuple(args.splits.split(",")),
        progress=lambda msg: print(
            f"  {msg} ({time.perf_counter() - start:.0f} s)", file=sys.stderr
        ),
    )
    print(format_table(results))
    noise = repeat_noise(agg)
    print(
        f"repeat measurements ({int(noise['rows'])} rows measured more than once with the "
        f"same knobs): they differ from their repeats by {noise['ttft_ms']:.1f} % TTFT and "
        f"{noise['tpot_ms']:.1f} % TPOT on average"
    )
    if not args.no_timing:
        timing = time_surrogate(agg)
        print(
            f"fit on all {len(kept)} evaluated runs: {timing['fit_s']:.1f} s; "
            f"predict {int(timing['rows_predicted'])} rows: {timing['predict_s']:.2f} s "
            f"(median of 5 calls; {timing['predict_min_s']:.2f}-{timing['predict_max_s']:.2f} s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
