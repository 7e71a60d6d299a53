"""Benchmark: ``fmtkit convert`` against ``datasets`` ``.map`` on the same files, in the same run.

Generates seeded data (ShareGPT: 2-8 turns of 20-400 characters of mixed ASCII
and CJK text, 10% with a system prompt; Alpaca: instruction, input 50% of the
time, output) and prints records/s for:

- fmtkit convert ShareGPT -> OpenAI and Alpaca -> ShareGPT, 1 and 2 jobs
  (with the input check of ``fmtkit validate``, as users run it, and without);
- ``fmtkit validate`` on the input alone, 1 process (for scale: ``convert``
  runs the same rules in its own read of the input, and its fast lanes prove
  the plain records clean without running them);
- ``datasets`` ``load_dataset("json")`` + ``.map`` (1 process) doing the same
  conversion, the LLaMA-Factory way; the ratio uses the ``.map`` time alone.

    python bench/bench_convert.py                      # 200k records
    python bench/bench_convert.py --records 1000000    # the full run
    python bench/bench_convert.py --repeat 3           # medians of 3 runs (shared machines are noisy)
    python bench/bench_convert.py --shapes --shape-records 20000   # every form, JSON Lines and arrays, short and long
    python bench/bench_convert.py --shapes --before /path/to/other/checkout   # and that checkout's convert, same run

Needs ``datasets`` (the train extra). Data is written under bench/data/ and
reused when present with the same size and seed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ASCII = "the quick brown fox jumps over a lazy dog while data flows through tokens and models learn "
CJK = "数据格式转换模型训练对话助手用户系统工具调用问题回答中文文本示例测试"


def _text(rng: random.Random) -> str:
    n = rng.randint(20, 400)
    out = []
    while sum(map(len, out)) < n:
        if rng.random() < 0.3:
            k = rng.randint(2, 12)
            out.append("".join(rng.choice(CJK) for _ in range(k)))
        else:
            start = rng.randrange(len(ASCII) - 20)
            out.append(ASCII[start : start + rng.randint(5, 20)])
    return "".join(out)[:n]


def make_sharegpt(path: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as fh:
        for _ in range(n):
            turns = rng.randint(1, 4) * 2
            conv = [{"from": "human" if i % 2 == 0 else "gpt", "value": _text(rng)} for i in range(turns)]
            rec = {"conversations": conv}
            if rng.random() < 0.1:
                rec["system"] = _text(rng)
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


def make_alpaca(path: Path, n: int, seed: int) -> None:
    rng = random.Random(seed + 1)
    with path.open("w", encoding="utf-8") as fh:
        for _ in range(n):
            rec = {"instruction": _text(rng), "input": _text(rng) if rng.random() < 0.5 else "", "output": _text(rng)}
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


def ensure_data(kind: str, n: int, seed: int) -> Path:
    folder = HERE / "data"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kind}_{n}_{seed}.jsonl"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        (make_sharegpt if kind == "sharegpt" else make_alpaca)(tmp, n, seed)
        tmp.replace(path)
    return path


def bench_fmtkit(src: Path, to: str, jobs: int, check: bool, out_dir: Path) -> float:
    from fmtkit.conversion import convert

    out = out_dir / f"out_{to}_{jobs}.jsonl"
    t0 = time.perf_counter()
    report = convert(src, to, out, jobs=jobs, check=check)
    dt = time.perf_counter() - t0
    assert report.skipped == 0 and report.written == report.records_read, report.to_dict()
    out.unlink()
    return dt


def bench_check(src: Path) -> float:
    from fmtkit.validation import validate

    t0 = time.perf_counter()
    validate(src)
    return time.perf_counter() - t0


def sharegpt_to_openai(example):
    roles = {"human": "user", "gpt": "assistant", "observation": "tool", "function_call": "assistant", "system": "system"}
    messages = []
    if example.get("system"):
        messages.append({"role": "system", "content": example["system"]})
    for m in example["conversations"]:
        messages.append({"role": roles[m["from"]], "content": m["value"]})
    return {"messages": messages}


def alpaca_to_sharegpt(example):
    query = "\n".join(x for x in (example["instruction"], example["input"]) if x)
    return {"conversations": [{"from": "human", "value": query}, {"from": "gpt", "value": example["output"]}]}


def bench_datasets(src: Path, kind: str, cache: Path) -> tuple[float, float]:
    """(load seconds, map seconds) for datasets load_dataset('json') and a 1-process .map."""
    import datasets

    datasets.disable_progress_bars()
    shutil.rmtree(cache, ignore_errors=True)
    t0 = time.perf_counter()
    ds = datasets.load_dataset("json", data_files=str(src), split="train", cache_dir=str(cache))
    t1 = time.perf_counter()
    fn = sharegpt_to_openai if kind == "sharegpt" else alpaca_to_sharegpt
    ds.map(fn, remove_columns=ds.column_names, num_proc=None, load_from_cache_file=False)
    t2 = time.perf_counter()
    shutil.rmtree(cache, ignore_errors=True)
    return t1 - t0, t2 - t1


# -- shapes: every bundled form converted to a neighbour, both containers, short and long records -----------
#
# The files are bench_validate's (same generator, same seed); each row times, in fresh child processes and in
# CPU seconds, the parse floor, ``fmtkit validate`` and ``fmtkit convert`` (with its input check, as users run it)
# on the same file.

# shape -> target forms (the common conversions first)
CONVERT_TARGETS = {
    "alpaca": ("sharegpt", "trl-prompt-completion", "trl-messages"), "sharegpt": ("openai", "trl-messages", "trl-prompt-completion"),
    "openai": ("sharegpt", "trl-messages"), "sharegpt-tools": ("openai",),
    "alpaca-preference": ("sharegpt-preference", "trl-preference"), "alpaca-kto": ("sharegpt-kto", "trl-unpaired"),
    "alpaca-pretrain": ("trl-text",), "sharegpt-preference": ("trl-preference",), "sharegpt-kto": ("trl-unpaired",),
    "trl-text": ("alpaca-pretrain",), "trl-messages": ("sharegpt",), "trl-prompt-completion": ("alpaca",),
    "trl-preference": ("alpaca-preference",), "trl-unpaired": ("alpaca-kto",),
}  # fmt: skip
COMMON = ("alpaca", "sharegpt", "openai")

CONVERT_CHILD = r"""
import json, sys, time
mode, path, form, to, warm, out = sys.argv[1:7]
import fmtkit
from fmtkit.conversion import convert
convert(warm, to, out + ".warm" + out[out.rfind("."):], form=form)  # imports and their compiling are not per-record costs
clock = time.process_time
t = clock()
if mode == "convert":
    r = convert(path, to, out, form=form)
    n, extra = r.records_read, {"written": r.written, "skipped": r.skipped}
else:
    s = fmtkit.validate(path, form=form).summary
    n, extra = s["records"], {}
dt = clock() - t
rss = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1])
print(json.dumps({"seconds": dt, "records": n, "rss_kb": rss, **extra}))
"""


def convert_child(mode: str, path: Path, form: str, to: str, out_dir: Path, repo: Path = HERE.parent) -> dict:
    """Run ``mode`` (convert or validate) in a fresh process, with the fmtkit of the checkout ``repo``."""
    import subprocess

    warm = path.with_name(path.stem.split("_")[0] + "_warm.jsonl")
    out = out_dir / ("out" + path.suffix)
    r = subprocess.run([sys.executable, "-c", CONVERT_CHILD, mode, str(path), form, to, str(warm), str(out)],
                       capture_output=True, text=True, cwd=repo, check=False)  # fmt: skip
    if r.returncode != 0:
        raise SystemExit(f"{mode} child failed on {path}:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def run_shapes(args) -> None:
    """One table: each shape converted to its neighbours (CONVERT_TARGETS), against the floor and validate on the same file
    (and, with ``--before``, against another checkout's convert)."""
    sys.path.insert(0, str(HERE))
    import bench_validate as bv

    shapes = args.forms.split(",") if args.forms else list(CONVERT_TARGETS)
    sizes = {"short": args.shape_records, "long": max(1, args.shape_records // args.long_divisor)}
    print(f"fmtkit convert over shapes: {sizes['short']:,} short / {sizes['long']:,} long records per file, seed {args.seed}, "
          f"best of {args.repeat} (CPU seconds, fresh process each)", flush=True)  # fmt: skip
    before = Path(args.before).resolve() if args.before else None
    targets = set(args.to.split(",")) if args.to else None
    rows = []
    with tempfile.TemporaryDirectory(dir=HERE) as tmp:
        for shape in shapes:
            form = bv.SHAPES[shape][0]
            for to in CONVERT_TARGETS[shape]:
                if targets is not None and to not in targets:
                    continue
                for profile in ("short", "long"):
                    for cont in args.containers.split(","):
                        rows.append(_shape_row(args, bv, shape, form, to, profile, cont, sizes[profile], Path(tmp), before))
    head = "| data | -> | records | container | MB | floor rec/s | validate rec/s | convert rec/s |"
    line = "|---|---|---:|---|---:|---:|---:|---:|"
    if before is not None:
        head, line = head + " before rec/s | after / before |", line + "---:|---:|"
    print(f"\n{head} convert / floor | convert / validate | written | RSS MB |\n{line}---:|---:|---:|---:|")
    for r in rows:
        was = f" {r['before']:,.0f} | {r['convert'] / r['before']:.2f}x |" if before is not None else ""
        print(f"| {r['shape']} | {r['to']} | {r['profile']} {r['records']:,} | {r['container']} | {r['size_mb']:.0f} | {r['floor']:,.0f} | {r['validate']:,.0f} "
              f"| {r['convert']:,.0f} |{was} {r['convert'] / r['floor']:.2f}x | {r['convert'] / r['validate']:.2f}x | {r['written']:,} | {r['rss_mb']:.0f} |")  # fmt: skip


def _shape_row(args, bv, shape: str, form: str, to: str, profile: str, cont: str, n: int, tmp: Path, before: Path | None) -> dict:
    """One row of the shapes table: the floor, validate and convert (and the ``before`` checkout's convert) on one file."""
    path = bv.ensure_shape(shape, profile, cont, n, args.seed)

    def best(run) -> dict:
        return min((run() for _ in range(args.repeat)), key=lambda r: r["seconds"])

    floor = best(lambda: bv.shape_child("floor", path, form))
    val = best(lambda: convert_child("validate", path, form, to, tmp))
    conv = best(lambda: convert_child("convert", path, form, to, tmp))
    n = floor["records"]
    row = {"shape": shape, "to": to, "profile": profile, "container": cont, "records": n, "size_mb": path.stat().st_size / (1 << 20),
           "floor": n / floor["seconds"], "validate": n / val["seconds"], "convert": n / conv["seconds"],
           "written": conv["written"], "rss_mb": conv["rss_kb"] / 1024}  # fmt: skip
    was = ""
    if before is not None:
        old = best(lambda: convert_child("convert", path, form, to, tmp, before))
        assert old["written"] == conv["written"], (shape, to, old, conv)
        row["before"] = n / old["seconds"]
        was = f", before {row['before']:,.0f} rec/s ({row['convert'] / row['before']:.2f}x)"
    print(f"  {shape} -> {to} {profile} {cont}: {row['convert']:,.0f} rec/s{was}, {row['convert'] / row['floor']:.2f}x floor, "
          f"{row['convert'] / row['validate']:.2f}x validate", flush=True)  # fmt: skip
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=None, help="runs per measurement (the median is printed; with --shapes the fastest, default 1)")
    ap.add_argument("--no-datasets", action="store_true", help="skip the datasets baseline")
    ap.add_argument("--shapes", action="store_true", help="instead: every bundled form converted to a neighbour, JSON Lines and JSON array, short and long records")
    ap.add_argument("--shape-records", type=int, default=10_000, help="with --shapes: records per file of short records")
    ap.add_argument("--long-divisor", type=int, default=5, help="with --shapes: files of long records hold --shape-records / this many")
    ap.add_argument("--forms", default=None, help=f"with --shapes: only these, comma-separated ({', '.join(CONVERT_TARGETS)})")
    ap.add_argument("--containers", default="jsonl,array", help="with --shapes: jsonl and/or array")
    ap.add_argument("--to", default=None, help="with --shapes: only conversions to these forms, comma-separated")
    ap.add_argument("--before", default=None, help="with --shapes: also time convert with the fmtkit of this checkout (e.g. the main branch)")
    args = ap.parse_args()
    args.repeat = args.repeat or 1
    sys.path.insert(0, str(HERE.parent))
    if args.shapes:
        run_shapes(args)
        return
    n = args.records
    print(f"records: {n}, seed: {args.seed}, cores: {os.cpu_count()}")
    results = {}
    with tempfile.TemporaryDirectory(dir=HERE) as tmp:
        out_dir = Path(tmp)
        for kind, to, label in (("sharegpt", "openai", "ShareGPT -> OpenAI"), ("alpaca", "sharegpt", "Alpaca -> ShareGPT")):
            src = ensure_data(kind, n, args.seed)
            size_mb = src.stat().st_size / 1e6
            print(f"\n{label}  ({src.name}, {size_mb:.0f} MB)")
            rows = {}
            for jobs in (1, 2):
                for check in (False, True):
                    dt = statistics.median(bench_fmtkit(src, to, jobs, check, out_dir) for _ in range(args.repeat))
                    rows[(jobs, check)] = n / dt
                    print(f"  fmtkit convert, {jobs} job{'s' if jobs > 1 else ' '}{', input checked' if check else ', --no-check   '}: {n / dt:>10,.0f} records/s  ({dt:.2f} s)")
            dt = statistics.median(bench_check(src) for _ in range(args.repeat))
            rows["check"] = n / dt
            print(f"  fmtkit validate alone, 1 process        : {n / dt:>10,.0f} records/s  ({dt:.2f} s)")
            if not args.no_datasets:
                runs = [bench_datasets(src, kind, out_dir / "hf_cache") for _ in range(args.repeat)]
                load, mapped = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
                print(f"  datasets load_dataset('json')           : {n / load:>10,.0f} records/s  ({load:.2f} s)")
                print(f"  datasets .map, 1 proc                   : {n / mapped:>10,.0f} records/s  ({mapped:.2f} s)")
                base = n / mapped
                for key, rate in rows.items():
                    if key == "check":
                        continue
                    jobs, check = key
                    print(f"  ratio fmtkit ({jobs} job{'s' if jobs > 1 else ''}{', checked' if check else ''}) / datasets .map: {rate / base:.1f}x")
                results[label] = {"map": base, **{k if isinstance(k, str) else f"{k[0]}job{'_checked' if k[1] else ''}": r for k, r in rows.items()}}
    print("\n" + json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
