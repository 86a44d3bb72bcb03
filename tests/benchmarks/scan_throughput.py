"""How fast `mixplan scan` reads a pool (issue 18): MB/s per core, peak memory, 1 vs 2 workers.

Generates ``--gb`` GB of jsonl (8 shards of documents of 200-4,000 words drawn from a fixed vocabulary,
a numeric score per document, 1% exact duplicates) in a temporary folder, then scans it with
``mixplan scan`` in a fresh process per configuration (so peak RSS is the scan's own):

* bytes only, 1 and 2 workers;
* a BPE tokenizer (trained here with ``tokenizers`` on 20 MB of the same text, vocabulary 8,000), 1 and
  2 workers, next to the floor of that path: reading the same lines and calling ``encode_batch_fast``
  directly, no hashing or scoring (1 worker).

    python tests/benchmarks/scan_throughput.py [--gb 1.0] [--repeats 3] [--paths bytes,bpe] [--out RESULTS.json]

Medians of ``--repeats`` runs (the machine is shared). Targets: bytes-only >= 100 MB/s per core;
tokenizer path within 1.5x of calling ``tokenizers`` directly; peak RSS <= 1 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

VOCAB = 5000


def generate(folder: Path, gb: float, seed: int = 0) -> float:
    """Write ~gb GB of jsonl in 8 shards; return the bytes written."""
    rng = np.random.default_rng(seed)
    words = np.array(["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), rng.integers(2, 10)))
                      for _ in range(VOCAB)])
    target = gb * 1e9 / 8
    total = 0
    for shard in range(8):
        written = 0
        recent: list[str] = []
        with open(folder / f"part{shard:02d}.jsonl", "w", encoding="utf-8") as fh:
            while written < target:
                lines = []
                for _ in range(256):
                    if recent and rng.random() < 0.01:
                        text = recent[int(rng.integers(len(recent)))]
                    else:
                        n = int(rng.integers(200, 4000))
                        text = " ".join(words[rng.zipf(1.3, n) % VOCAB])
                        recent = (recent + [text])[-64:]
                    lines.append(json.dumps({"text": text, "q": float(rng.random())}) + "\n")
                chunk = "".join(lines)
                fh.write(chunk)
                written += len(chunk)
        total += written
    return float(total)


def train_tokenizer(folder: Path, path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    def texts():
        read = 0
        with open(folder / "part00.jsonl", encoding="utf-8") as fh:
            for line in fh:
                read += len(line)
                yield json.loads(line)["text"]
                if read > 20e6:
                    return

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(texts(), trainers.BpeTrainer(vocab_size=8000, special_tokens=["[UNK]"]))
    tok.save(str(path))


DIRECT = r"""
import json, sys, time, glob
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[1])
t0 = time.perf_counter(); n = 0
for path in sorted(glob.glob(sys.argv[2] + "/*.jsonl")):
    batch = []
    with open(path, "rb") as fh:
        for line in fh:
            batch.append(json.loads(line)["text"])
            if len(batch) == 512:
                n += sum(len(e.ids) for e in tok.encode_batch_fast(batch, add_special_tokens=False)); batch = []
    if batch:
        n += sum(len(e.ids) for e in tok.encode_batch_fast(batch, add_special_tokens=False))
print(json.dumps({"seconds": time.perf_counter() - t0, "tokens": n}))
"""

MEASURE = r"""
import json, resource, sys, time
from mixplan.cli import main
t0 = time.perf_counter()
rc = main(sys.argv[1:])
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"rc": rc, "seconds": time.perf_counter() - t0, "rss_mb": max(rss, kids)}), file=sys.stderr)
"""


def run_scan(manifest: Path, out: Path, workers: int, tokenizer: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", RAYON_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", MEASURE, "scan", str(manifest), "--out", str(out), "--workers",
                           str(workers), "--tokenizer", tokenizer, "--force", "--json"],
                          capture_output=True, text=True, env=env, check=False)
    info = json.loads(proc.stderr.strip().splitlines()[-1])
    if info["rc"] != 0:
        sys.exit(f"scan failed: {proc.stderr}")
    doc = json.loads(proc.stdout)
    return info | {"tokens": doc["pools"]["bench"]["tokens"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--paths", default="bytes,bpe", help="which paths to measure (bpe adds the direct call)")
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "mixplan_scan_throughput.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        size = generate(folder, args.gb)
        print(f"generated {size / 1e6:,.0f} MB of jsonl in {time.perf_counter() - t0:.0f} s", flush=True)
        paths = args.paths.split(",")
        if "bpe" in paths:
            train_tokenizer(folder, folder / "tokenizer.json")
        manifest = folder / "pools.toml"
        manifest.write_text('[pools.bench]\ntokens = 1\nscores = ["q"]\n[pools.bench.source]\ntype = "files"\n'
                            'paths = ["part*.jsonl"]\n')
        rows = []
        configs = [(p, w) for p in ("bytes", "bpe") if p in paths for w in (1, 2)]
        for name, workers in configs:
            tok = "bytes" if name == "bytes" else str(folder / "tokenizer.json")
            runs = [run_scan(manifest, folder / "out" / "s.toml", workers, tok) for _ in range(args.repeats)]
            sec = float(np.median([r["seconds"] for r in runs]))
            rows.append({"path": name, "workers": workers, "seconds": sec, "MB/s": size / 1e6 / sec,
                         "MB/s per core": size / 1e6 / sec / workers,
                         "peak RSS MB": float(max(r["rss_mb"] for r in runs)), "tokens": runs[0]["tokens"]})
            print(rows[-1], flush=True)
        direct = [json.loads(subprocess.run([sys.executable, "-c", DIRECT, str(folder / "tokenizer.json"), str(folder)],
                                            capture_output=True, text=True, check=True,
                                            env=dict(os.environ, RAYON_NUM_THREADS="1")).stdout)
                  for _ in range(args.repeats if "bpe" in paths else 0)]
        direct_sec = float(np.median([d["seconds"] for d in direct])) if direct else float("nan")
    bpe1 = next((r for r in rows if r["path"] == "bpe" and r["workers"] == 1), None)
    if bpe1 is not None:
        assert direct[0]["tokens"] == bpe1["tokens"], "scan and the direct call count different tokens"
    print(f"\n{'path':<8}{'workers':>8}{'seconds':>10}{'MB/s':>9}{'MB/s/core':>11}{'peak RSS MB':>13}")
    for r in rows:
        print(f"{r['path']:<8}{r['workers']:>8}{r['seconds']:>10.1f}{r['MB/s']:>9.1f}{r['MB/s per core']:>11.1f}"
              f"{r['peak RSS MB']:>13.0f}")
    ratio = float("nan")
    if bpe1 is not None:
        print(f"{'direct':<8}{1:>8}{direct_sec:>10.1f}{size / 1e6 / direct_sec:>9.1f}{size / 1e6 / direct_sec:>11.1f}")
        ratio = bpe1["seconds"] / direct_sec
        print(f"tokenizer path / direct tokenizers call (1 worker): {ratio:.2f}x (target <= 1.5x)")
    bytes1 = next((r for r in rows if r["path"] == "bytes" and r["workers"] == 1), None)
    if bytes1 is not None:
        print(f"bytes-only {bytes1['MB/s per core']:.0f} MB/s per core (target >= 100)")
    print(f"peak RSS {max(r['peak RSS MB'] for r in rows):.0f} MB (target <= 1024)")
    args.out.write_text(json.dumps({"size_bytes": size, "rows": rows, "direct_seconds": direct_sec,
                                    "tokenizer_over_direct": ratio}, indent=2) + "\n")
    print(f"results written to {args.out}")


if __name__ == "__main__":
    main()
