"""Benchmark: one multi-shard dataset through ``--jobs 1``, ``--jobs 2`` and ``--engine ray`` (2 local CPUs), in one run.

Generates a seeded dataset folder under bench/data/scale/: two folder entries,
``chat`` (ShareGPT) and ``instruct`` (Alpaca), of ``--shards`` JSON Lines
shards in all, ``--records`` records together, with the lengths and turn
counts of ``bench/bench_validate.py``'s "short" profile (~0.9 kB a record).
Then, each command in a fresh child process, timed wall-clock:

  - ``fmtkit validate FOLDER`` (and ``fmtkit stats FOLDER`` with ``--commands
    validate,stats``) with ``--jobs 1``, ``--jobs 2`` and ``--engine ray --jobs 2``;
  - Ray's fixed cost: ``fmtkit validate`` of a one-record file with
    ``--engine ray --jobs 2`` against ``--jobs 1`` (starting a local Ray
    instance, its workers, and stopping it).

The table gives wall seconds, records/s, each run against ``--jobs 1``, and
the size from which Ray beats ``--jobs 1`` on this machine: the fixed cost
divided by the time Ray saves per record.

    python bench/bench_scale.py                           # 2M records, 8 shards (~1.8 GB)
    python bench/bench_scale.py --records 500000          # smaller, on a busy machine
    python bench/bench_scale.py --commands validate,stats --json bench/out/scale.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(HERE)]  # this checkout's fmtkit, and the other benches

from bench_stats import run_measured  # noqa: E402
from bench_validate import make_shape  # noqa: E402

MB = 1 << 20
ENTRIES = {"chat": ("sharegpt", {"messages": "conversations", "system": "system"}), "instruct": ("alpaca", None)}
RUNS = {"--jobs 1": ["--jobs", "1"], "--jobs 2": ["--jobs", "2"], "--engine ray": ["--engine", "ray", "--jobs", "2"]}


def ensure_folder(records: int, shards: int, seed: int) -> Path:
    """The dataset folder: shards split evenly between the two entries, generated once."""
    root = HERE / "data" / "scale" / f"{records}_{shards}_s{seed}"
    if (root / "dataset_info.json").exists():
        return root
    t = time.perf_counter()
    info = {}
    for e, (entry, (shape, columns)) in enumerate(ENTRIES.items()):
        folder = root / entry
        folder.mkdir(parents=True, exist_ok=True)
        mine = range(e, shards, len(ENTRIES))  # chat gets shards 0, 2, 4...; instruct 1, 3, 5...
        for k in mine:
            n = records // shards + (1 if k < records % shards else 0)
            path = folder / f"part-{k:05d}.jsonl"
            make_shape(path.with_suffix(".tmp"), shape, "short", "jsonl", n, seed * 1000 + k)
            path.with_suffix(".tmp").replace(path)
        info[entry] = {"file_name": entry, "formatting": "sharegpt" if shape == "sharegpt" else "alpaca"}
        if columns:
            info[entry]["columns"] = columns
    (root / "dataset_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    size = sum(p.stat().st_size for p in root.rglob("*.jsonl"))
    print(f"  generated {root.relative_to(REPO)}: {records:,} records, {shards} shards, {size / MB:,.0f} MB in {time.perf_counter() - t:.0f} s", flush=True)
    return root


def fmtkit_cmd(command: str, source: Path, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "fmtkit", command, str(source), "--output-format", "json", *extra]


def startup_cost() -> float:
    """Seconds ``--engine ray`` adds to a run that has almost nothing to do (best of 2)."""
    tiny = HERE / "data" / "scale" / "tiny.jsonl"
    tiny.parent.mkdir(parents=True, exist_ok=True)
    tiny.write_text('{"instruction": "hi", "input": "", "output": "hello"}\n', encoding="utf-8")
    local = min(run_measured(fmtkit_cmd("validate", tiny, RUNS["--jobs 1"]))["seconds"] for _ in range(2))
    ray = min(run_measured(fmtkit_cmd("validate", tiny, RUNS["--engine ray"]))["seconds"] for _ in range(2))
    print(f"  one-record file: --jobs 1 {local:.2f} s, --engine ray {ray:.2f} s", flush=True)
    return ray - local


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=2_000_000, help="records in all (default 2,000,000)")
    ap.add_argument("--shards", type=int, default=8, help="JSON Lines shards, split between the two entries (default 8)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--commands", default="validate", help="comma-separated: validate and/or stats (default validate)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    try:
        import ray  # noqa: F401
    except ImportError:
        raise SystemExit("bench_scale needs Ray: pip install 'fmtkit[ray]'") from None
    root = ensure_folder(args.records, args.shards, args.seed)
    fixed = startup_cost()
    rows = []
    for command in args.commands.split(","):
        base = None
        for label, extra in RUNS.items():
            m = run_measured(fmtkit_cmd(command, root, extra))
            base = base or m["seconds"]
            rows.append({"command": command, "run": label, "seconds": round(m["seconds"], 1), "records_per_s": round(args.records / m["seconds"]),
                         "vs_jobs_1": round(base / m["seconds"], 2)})  # fmt: skip
            print(f"  {command} {label}: {m['seconds']:.1f} s", flush=True)
    print(f"\n{args.records:,} records, {args.shards} shards, {sum(p.stat().st_size for p in root.rglob('*.jsonl')) / MB:,.0f} MB; "
          f"Ray's fixed cost (one-record file, --engine ray vs --jobs 1): {fixed:.1f} s\n")  # fmt: skip
    print("| command | run | wall s | records/s | vs --jobs 1 |\n|---|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['command']} | `{r['run']}` | {r['seconds']:,.1f} | {r['records_per_s']:,} | {r['vs_jobs_1']:.2f}x |")
    for command in args.commands.split(","):
        took = {r["run"]: r["seconds"] for r in rows if r["command"] == command}
        for other in ("--jobs 1", "--jobs 2"):
            # Ray's time is its fixed cost plus a per-record part: it wins once that part saves more than the fixed cost.
            saved = (took[other] - (took["--engine ray"] - fixed)) / args.records
            when = f"from about {fixed / saved:,.0f} records" if saved > 0 else "at no size (it is not faster per record)"
            print(f"{command}: --engine ray beats {other} on this machine {when}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"records": args.records, "shards": args.shards, "ray_fixed_s": round(fixed, 2), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
