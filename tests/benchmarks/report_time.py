"""What a report adds to a plan: median wall time of the demo plan with and without ``--report``, each a
fresh process, interleaved side by side over ``--repeats`` runs (issue 20's goal: at most 2 s more).

    python tests/benchmarks/report_time.py [--repeats 5] [--out RESULTS.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
from pathlib import Path

from _common import timed_fresh

PLAN = ["plan", "examples/demo_plan.toml"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "mixplan_report_time.json")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp())
    times: dict[str, list[float]] = {"plan": [], "plan --report": []}
    try:
        for i in range(args.repeats):  # interleaved, so that a busy spell of the machine hits both alike
            for name, extra in (("plan", []), ("plan --report", ["--report"])):
                times[name].append(timed_fresh(PLAN + ["--out", str(work / f"{i}-{len(extra)}"), *extra]))
    finally:
        shutil.rmtree(work)
    med = {k: statistics.median(v) for k, v in times.items()}
    added = [b - a for a, b in zip(times["plan"], times["plan --report"])]
    print(f"{'command':<16} {'median s':>9} {'min s':>7} {'max s':>7}  ({args.repeats} runs each, interleaved)")
    for name, ts in times.items():
        print(f"{name:<16} {med[name]:>9.2f} {min(ts):>7.2f} {max(ts):>7.2f}")
    print(f"report adds (median of paired differences): {statistics.median(added):.2f} s (goal <= 2 s)")
    doc = {"repeats": args.repeats, "times_s": times, "median_s": med, "added_median_s": statistics.median(added)}
    args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {args.out}")


if __name__ == "__main__":
    main()
