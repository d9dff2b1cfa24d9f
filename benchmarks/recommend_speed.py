"""How long a recommendation takes: warm (in one process) and from a cold process.

Setup: a temporary SQLite database with the bundled reference runs and a surrogate
trained on them (stored, as ``epopt recommend`` expects). Request: Llama-3.1-70B on
H100 SXM, 2,048/256 tokens at 5 req/s, ``ttft_p95<=2s,tpot_p95<=50ms``, all three
engines, exhaustive search with the fast evaluator (about 13,000 feasible candidates).

* **warm** -- the same process after a first recommendation (surrogate loaded, kernel
  tables and latency curves cached): the same request again, the request with another
  SLO, and with another rate (which reuses the curves: they depend on the lengths, not
  the rate or the SLO).
* **cold** -- ``epopt recommend ...`` as a new process (imports, opening the database,
  loading the stored surrogate, the search, the capacity plan, the audit record).

Done-when figures (issue 6): warm < 2 s over >= 5,000 candidates; cold < 10 s.

Usage:
    python benchmarks/recommend_speed.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["ARGS", "main"]

ARGS = [
    "recommend",
    "--model",
    "meta-llama/Llama-3.1-70B",
    "--gpu",
    "h100_sxm",
    "--isl",
    "2048",
    "--osl",
    "256",
    "--rate",
    "5",
    "--slo",
    "ttft_p95<=2s,tpot_p95<=50ms",
]

_LAUNCHER = (
    "import sys\n"
    "from optimizer.cli import main as m\n"
    "if 'recommend' not in [c.name for c in m.app.registered_commands]:\n"
    "    from optimizer.cli.recommend import recommend_command\n"
    "    m.app.command('recommend')(recommend_command)\n"
    "sys.exit(m.main(sys.argv[1:]))\n"
)


def _prepare(url: str) -> str:
    from optimizer.cli.main import main as epopt
    from optimizer.storage import open_database
    from optimizer.surrogate import Surrogate
    from optimizer.surrogate.registry import save_trained_surrogate, stored_training_runs

    if epopt(["profiles", "import", "--reference", "--url", url]) != 0:
        raise SystemExit("importing the reference runs failed")
    engine = open_database(url)
    runs = stored_training_runs(engine)
    started = time.perf_counter()
    model = Surrogate(random_state=0).fit(runs)
    print(f"surrogate fitted in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return save_trained_surrogate(engine, model, runs, {"training_rows": len(runs)}).version


def _warm(url: str, repeats: int) -> dict[str, float]:
    from optimizer.domain import SLO, Workload
    from optimizer.search.recommend import Recommender
    from optimizer.search.request import RecommendRequest
    from optimizer.storage import open_database
    from optimizer.surrogate.registry import load_trained_surrogate

    model, stored = load_trained_surrogate(open_database(url))
    recommender = Recommender(model, surrogate_version=stored.version)
    request = RecommendRequest(
        model="meta-llama/Llama-3.1-70B",
        gpus=("h100_sxm",),
        workload=Workload.simple(2048, 256, rate=5.0),
        slo=SLO.parse("ttft_p95<=2s,tpot_p95<=50ms"),
    )
    started = time.perf_counter()
    first = recommender.recommend(request)
    out = {"first_s": time.perf_counter() - started, "candidates": float(len(first.candidates))}
    variants = {
        "same_request_s": [request] * repeats,
        "new_slo_s": [
            request.model_copy(update={"slo": SLO.parse(f"ttft_p95<={1 + i / 2}s,tpot_p95<=40ms")})
            for i in range(repeats)
        ],
        "new_rate_s": [
            request.model_copy(update={"workload": Workload.simple(2048, 256, rate=2.0 + i)})
            for i in range(repeats)
        ],
    }
    for name, requests in variants.items():
        times = []
        for r in requests:
            began = time.perf_counter()
            recommender.recommend(r)
            times.append(time.perf_counter() - began)
        out[name] = statistics.median(times)
    return out


def _cold(url: str, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, *ARGS, "--url", url, "--json"],
            capture_output=True,
            text=True,
            check=False,
        )
        times.append(time.perf_counter() - began)
        if done.returncode != 0:
            raise SystemExit(f"epopt recommend failed ({done.returncode}): {done.stderr[-2000:]}")
    return times


def main(argv: list[str] | None = None) -> int:
    """Prepare the database, time warm and cold recommendations, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="epopt-speed-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'epopt.sqlite3'}"
        version = _prepare(url)
        warm = _warm(url, args.repeats)
        cold = _cold(url, max(1, args.repeats // 2 + 1))
    print(f"surrogate {version}; {int(warm['candidates']):,} candidates evaluated")
    cold_s = statistics.median(cold)
    rows = [
        ("first recommendation in this process (latency curves built)", warm["first_s"]),
        (f"warm, same request (median of {args.repeats})", warm["same_request_s"]),
        ("warm, another SLO (median)", warm["new_slo_s"]),
        ("warm, another rate (median)", warm["new_rate_s"]),
        (f"cold `epopt recommend` process (median of {len(cold)})", cold_s),
    ]
    print("| measurement | seconds |")
    print("|---|---|")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.2f} |")
    ok = warm["candidates"] >= 5000 and warm["new_slo_s"] < 2.0 and cold_s < 10.0
    verdict = "met" if ok else "NOT met"
    print(f"done-when: {verdict} (warm < 2 s over >= 5,000 candidates; cold < 10 s)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
