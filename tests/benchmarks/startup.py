"""How fast commands start: median wall time of ``mixplan --help`` and ``mixplan validate`` on the demo
study, each a fresh process (what a user waits for), over ``--repeats`` runs side by side.

    python tests/benchmarks/startup.py [--repeats 10] [--out RESULTS.json]

Goal (issue 15): both under 1 s. What keeps them there: public names are imported on first use
(``mixplan._lazy``) and the heavy libraries (scikit-learn, LightGBM, POT, SciPy, datasets) load inside the
commands that need them; ``tests/test_architecture.py`` checks the imports, this script the seconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from _common import timed_fresh

COMMANDS = {
    "mixplan --help": ["--help"],
    "mixplan validate (demo)": ["validate", "proxies/demo/runs.csv", "--pools", "pools/demo.toml"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "mixplan_startup.json")
    args = ap.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):  # interleaved, so that a busy spell of the machine hits both alike
        for name, argv in COMMANDS.items():
            times[name].append(timed_fresh(argv))
    print(f"{'command':<26} {'median s':>9} {'min s':>7} {'max s':>7}  ({args.repeats} runs)")
    doc = {"repeats": args.repeats, "python": sys.version.split()[0], "commands": {}}
    for name, ts in times.items():
        doc["commands"][name] = {"median_s": statistics.median(ts), "min_s": min(ts), "max_s": max(ts), "runs_s": ts}
        print(f"{name:<26} {statistics.median(ts):>9.3f} {min(ts):>7.3f} {max(ts):>7.3f}")
    args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {args.out}")


if __name__ == "__main__":
    main()
