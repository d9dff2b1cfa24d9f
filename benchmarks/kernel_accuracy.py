"""Held-out accuracy of the operator models per GPU x engine x operator, and GPU transfer.

Usage::

    python benchmarks/kernel_accuracy.py                      # vLLM tables, every GPU
    python benchmarks/kernel_accuracy.py --engines vllm sglang trtllm --split both
    python benchmarks/kernel_accuracy.py --gpus h100_sxm --no-transfer --no-calibration

Prints three tables and the runtime:

1. held-out error of each fitted operator model (median / mean / p90 absolute
   percentage error against the fastest measurement of each held-out shape; ``slice``
   holds out every other interior value of one size axis, ``random`` 20 % of shapes);
2. roofline efficiencies fitted per GPU, and the roofline's own error with them;
3. transfer: a GPU's kernels predicted from another GPU's measurements, as if the
   target were never measured -- by the roofline with the source's efficiencies, and
   by the source's measured models scaled by the ratio of roofline times.

Data: aiconfigurator-core 0.12.0 kernel tables (NVIDIA, Apache-2.0).
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from optimizer.errors import NotFoundError
from optimizer.perf.accuracy import evaluate_held_out, evaluate_transfer, roofline_errors
from optimizer.perf.calibration import fit_calibration
from optimizer.perf.kernel_data import (
    available_engines,
    gpus_with_kernel_data,
    load_kernel_table,
    measured_gpu_figures,
)

__all__ = ["main"]

OPERATORS = (
    "gemm",
    "context_attention",
    "generation_attention",
    "context_mla",
    "generation_mla",
    "moe",
    "custom_all_reduce",
)
CALIBRATED = ("gemm", "context_attention", "generation_attention", "moe", "custom_all_reduce")
TRANSFERS = (
    ("h100_sxm", "h200_sxm"),
    ("h200_sxm", "h100_sxm"),
    ("b200_sxm", "gb200"),
    ("b200_sxm", "b300_sxm"),
    ("gb200", "gb300"),
    ("l40s", "rtx_pro_6000_server"),
    ("h100_sxm", "b200_sxm"),
    ("a100_sxm", "h100_sxm"),
)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def held_out_table(gpus: list[str], engines: list[str], splits: list[str]) -> pd.DataFrame:
    rows = []
    for gpu in gpus:
        for operator in OPERATORS:
            for engine in engines:
                if engine not in available_engines(gpu, operator):
                    continue
                table = load_kernel_table(gpu, operator, engine)
                for split in splits:
                    result = evaluate_held_out(table, how=split)
                    rows.append(
                        {
                            "gpu": gpu,
                            "engine": engine,
                            "operator": operator,
                            "split": split,
                            "version": table.version,
                            "held_out": result.errors.rows,
                            "median_%": _pct(result.errors.median),
                            "mean_%": _pct(result.errors.mean),
                            "p90_%": _pct(result.errors.p90),
                            "fit_s": f"{result.fit_seconds:.2f}",
                        }
                    )
    return pd.DataFrame(rows)


def calibration_table(gpus: list[str], engine: str) -> pd.DataFrame:
    rows = []
    for gpu in gpus:
        try:
            figures = measured_gpu_figures(gpu)
        except NotFoundError:
            continue
        tables = {}
        for operator in CALIBRATED:
            if engine in available_engines(gpu, operator):
                name = "all_reduce" if operator == "custom_all_reduce" else operator
                tables[name] = load_kernel_table(gpu, operator, engine).frame
        calibration = fit_calibration(tables, figures)
        for name, frame in tables.items():
            formats = sorted(frame["quantization"].unique()) if "quantization" in frame else []
            for quantization in [None, *formats]:
                rows_of = (
                    frame if quantization is None else frame[frame["quantization"] == quantization]
                )
                eff = calibration.efficiency(name, quantization)
                # errors use the per-format efficiencies where fitted, as the library does
                errors = roofline_errors(rows_of, name, figures, calibration)
                rows.append(
                    {
                        "gpu": gpu,
                        "operator": name,
                        "format": quantization or "all",
                        "compute_eff": f"{eff.compute:.2f}",
                        "memory_eff": f"{eff.memory:.2f}",
                        "overhead_us": f"{1e3 * eff.overhead_ms:.1f}",
                        "roofline_median_%": _pct(errors.median),
                        "roofline_mean_%": _pct(errors.mean),
                    }
                )
    return pd.DataFrame(rows)


def transfer_table(pairs: list[tuple[str, str]], engine: str) -> pd.DataFrame:
    rows = []
    for source, target in pairs:
        for result in evaluate_transfer(source, target, engine):
            rows.append(
                {
                    "source": source,
                    "target": target,
                    "operator": result.operator,
                    "roofline_median_%": _pct(result.roofline.median),
                    "roofline_mean_%": _pct(result.roofline.mean),
                    "transferred_median_%": _pct(result.transferred.median)
                    if result.transferred
                    else "-",
                    "transferred_mean_%": _pct(result.transferred.mean)
                    if result.transferred
                    else "-",
                    "coverage_%": _pct(result.coverage),
                }
            )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--gpus", nargs="*", default=None, help="GPU ids (default: all with data)")
    parser.add_argument("--engines", nargs="*", default=["vllm"], help="engines (default: vllm)")
    parser.add_argument("--split", choices=["slice", "random", "both"], default="slice")
    parser.add_argument("--no-calibration", action="store_true", help="skip the efficiency table")
    parser.add_argument("--no-transfer", action="store_true", help="skip the transfer table")
    args = parser.parse_args(argv)

    gpus = args.gpus or list(gpus_with_kernel_data())
    splits = ["slice", "random"] if args.split == "both" else [args.split]
    pd.set_option("display.width", 200)
    pd.set_option("display.max_rows", 1000)
    start = time.perf_counter()

    print("== held-out accuracy of the operator models (absolute percentage error) ==")
    print(held_out_table(gpus, args.engines, splits).to_string(index=False))
    if not args.no_calibration:
        print(f"\n== roofline efficiencies fitted per GPU ({args.engines[0]} tables) ==")
        print(calibration_table(gpus, args.engines[0]).to_string(index=False))
    if not args.no_transfer:
        pairs = [p for p in TRANSFERS if p[0] in gpus and p[1] in gpus]
        print(f"\n== transfer to a GPU treated as unmeasured ({args.engines[0]} tables) ==")
        print(transfer_table(pairs, args.engines[0]).to_string(index=False))
    print(f"\nruntime: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
