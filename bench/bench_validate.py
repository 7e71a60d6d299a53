"""Benchmark: ``fmtkit validate`` against the parse floor, plain ``jsonschema`` and ``datasets``, side by side.

Generates seeded ShareGPT JSON Lines (2-8 turns of 20-400 characters of mixed
ASCII and CJK text, 10% with a system field) under bench/data/, then measures
in the same run (rows and targets: bench/README.md):

  (a) floor: read lines + ``orjson.loads`` (1 process)
  (b) ``fmtkit.validation.validate(file, form="sharegpt")`` (1 process), with its peak RSS
  (c) the same with ``jobs=2``
  (d) plain ``jsonschema`` Draft 2020-12 ``iter_errors`` loop, on a subset
  (e) ``datasets`` ``load_dataset("json")`` + ``.map`` ShareGPT -> OpenAI (1 process), on a subset
  and the peak RSS of (b) on a file twice as big (it must not grow), and ``fmtkit --help`` imports.

    python bench/bench_validate.py                       # 200k records (~330 MB)
    python bench/bench_validate.py --records 1000000     # the full run (~1.6 GB)

(b) and (c) run in a fresh child process each (the time is taken inside the
child around ``validate()``; peak RSS is the child's ``ru_maxrss``, workers
included for (c)). Times are the median of ``--repeat`` runs. Targets:
(b) >= 0.5x (a); (c) >= 1.8x (b); (b) >= 15x (d); (b) >= 5x (e); RSS(b) < 200 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ASCII = "the quick brown fox jumps over a lazy dog while data flows through tokens and models learn "
CJK = "数据格式转换模型训练对话助手用户系统工具调用问题回答中文文本示例测试验证规则记录"
MB = 1 << 20


# -- data ---------------------------------------------------------------------------


def _text(rng: random.Random) -> str:
    n = rng.randint(20, 400)
    out, size = [], 0
    while size < n:
        if rng.random() < 0.3:
            piece = "".join(rng.choice(CJK) for _ in range(rng.randint(2, 12)))
        else:
            start = rng.randrange(len(ASCII) - 20)
            piece = ASCII[start : start + rng.randint(5, 20)]
        out.append(piece)
        size += len(piece)
    return "".join(out)[:n]


def make_sharegpt(path: Path, n: int, seed: int) -> None:
    import orjson

    rng = random.Random(seed)
    with path.open("wb") as fh:
        for _ in range(n):
            turns = rng.randint(1, 4) * 2
            rec = {"conversations": [{"from": "human" if i % 2 == 0 else "gpt", "value": _text(rng)} for i in range(turns)]}
            if rng.random() < 0.1:
                rec["system"] = _text(rng)
            fh.write(orjson.dumps(rec) + b"\n")


def ensure_data(n: int, seed: int) -> Path:
    folder = HERE / "data"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"validate_sharegpt_{n}_s{seed}.jsonl"
    if not path.exists():
        t = time.perf_counter()
        tmp = path.with_suffix(".tmp")
        make_sharegpt(tmp, n, seed)
        tmp.replace(path)
        print(f"  generated {path.relative_to(REPO)} ({path.stat().st_size / MB:.0f} MB) in {time.perf_counter() - t:.1f} s", flush=True)
    return path


def head_file(src: Path, n: int) -> Path:
    """The first ``n`` records of ``src`` as their own file (for the slow baselines)."""
    dst = src.with_name(f"{src.stem}_head{n}.jsonl")
    if not dst.exists():
        tmp = dst.with_suffix(".tmp")
        with src.open("rb") as fi, tmp.open("wb") as fo:
            for i, line in enumerate(fi):
                if i >= n:
                    break
                fo.write(line)
        tmp.replace(dst)
    return dst


def count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for _ in fh)


# -- measurements -----------------------------------------------------------------------


def floor(path: Path) -> float:
    import orjson

    loads = orjson.loads
    t = time.perf_counter()
    with path.open("rb") as fh:
        for line in fh:
            loads(line)
    return time.perf_counter() - t


CHILD = r"""
import json, os, resource, sys, time
import fmtkit
fmtkit.validate  # import the library before the clock starts
t, t0 = time.perf_counter(), os.times()
report = fmtkit.validate(sys.argv[1], form="sharegpt", jobs=int(sys.argv[2]))
dt, t1 = time.perf_counter() - t, os.times()
cpu = sum(t1[:4]) - sum(t0[:4])  # this process and its workers, user + system
self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:  # ru_maxrss keeps the parent's peak across fork+exec on Linux; VmHWM is this program's own
    self_rss = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1])
except (OSError, StopIteration):
    pass
kids_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
s = report.summary
print(json.dumps({"seconds": dt, "cpu_seconds": cpu, "rss_kb": self_rss, "children_rss_kb": kids_rss, "records": s["records"],
                  "errors": s["errors"], "by_rule": s["by_rule"]}))
"""


def fmtkit_child(path: Path, jobs: int) -> dict:
    r = subprocess.run([sys.executable, "-c", CHILD, str(path), str(jobs)], capture_output=True, text=True, cwd=REPO, check=False)
    if r.returncode != 0:
        raise SystemExit(f"fmtkit validate child failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def plain_jsonschema(path: Path) -> float:
    import orjson

    from fmtkit.schemas import reference_validator, schema_for_form

    validator = reference_validator(schema_for_form("sharegpt"))  # a plain Draft202012Validator (+ $ref registry)
    assert type(validator).__name__ == "Draft202012Validator"
    loads = orjson.loads
    bad = 0
    t = time.perf_counter()
    with path.open("rb") as fh:
        for line in fh:
            for _ in validator.iter_errors(loads(line)):
                bad += 1
                break
    dt = time.perf_counter() - t
    assert bad == 0, f"the plain jsonschema loop found {bad} invalid records in generated data"
    return dt


def datasets_map(path: Path) -> tuple[float, float]:
    """(load seconds, map seconds) for load_dataset("json") + .map ShareGPT -> OpenAI messages, 1 process."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    import datasets

    datasets.disable_progress_bars()
    roles = {"human": "user", "gpt": "assistant", "system": "system", "observation": "tool", "function_call": "assistant"}

    def to_openai(ex):
        msgs = [{"role": "system", "content": ex["system"]}] if ex.get("system") else []
        msgs += [{"role": roles[m["from"]], "content": m["value"]} for m in ex["conversations"]]
        return {"messages": msgs}

    with tempfile.TemporaryDirectory(prefix="fmtkit-bench-hf-") as cache:
        t = time.perf_counter()
        ds = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=cache)
        t_load = time.perf_counter() - t
        t = time.perf_counter()
        ds.map(to_openai, remove_columns=ds.column_names, num_proc=None, load_from_cache_file=False)
        t_map = time.perf_counter() - t
    return t_load, t_map


def help_check() -> dict:
    code = (
        "import sys, time\n"
        "t = time.perf_counter()\n"
        "from fmtkit.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'datasets'})\n"
        "print('\\nRESULT', time.perf_counter() - t, ','.join(heavy), file=sys.stderr)\n"
    )
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False)
    wall = time.perf_counter() - t
    _, seconds, heavy = [ln for ln in r.stderr.splitlines() if ln.startswith("RESULT")][-1].split(" ")
    return {"process_wall_s": wall, "in_process_s": float(seconds), "heavy_modules": [m for m in heavy.split(",") if m]}


# -- shapes: every bundled form, both containers, short and long records ----------------
#
# Lengths are drawn from log-normal distributions (median, sigma) fitted by eye to
# public data: Alpaca-52k (instruction median ~60 characters, 60% of inputs empty,
# output median ~200 with a long tail), LLaMA-Factory's demo files (~0.9 kB Alpaca
# records, 1-4 ShareGPT exchanges, glaive-style tool calls) and ShareGPT-90k style
# chats (long: 2-10 exchanges, answers median ~1,200 characters). About 1% of texts
# hold a harmless '<' (HTML or a comparison), as code-heavy sets do.

PROFILES = {
    # name: instruction/user text, input/context, answer, pretrain text, exchanges (min, max)
    "short": {"ask": (60, 0.7), "input": (80, 0.9), "answer": (200, 1.0), "doc": (600, 0.8), "turns": (1, 3)},
    "long": {"ask": (250, 0.9), "input": (600, 1.0), "answer": (1200, 0.7), "doc": (4000, 0.7), "turns": (2, 10)},
}
_CORPUS_WORDS = (ASCII * 3).split() + ["model", "dataset", "function", "python", "example", "because", "therefore", "answer", "question"]
_LT = ["use <b>bold</b> here", "if a < b then", "the <div> element", "x <= 3"]


class TextSource:
    """Random texts of realistic lengths, cut from one pre-built corpus (fast)."""

    def __init__(self, rng: random.Random, profile: dict):
        self.rng, self.p = rng, profile
        parts = []
        for _ in range(40000):
            parts.append("".join(rng.choice(CJK) for _ in range(rng.randint(2, 10))) if rng.random() < 0.12 else rng.choice(_CORPUS_WORDS))
        self.corpus = " ".join(parts)

    def text(self, kind: str) -> str:
        median, sigma = self.p[kind]
        n = max(3, min(int(self.rng.lognormvariate(0, sigma) * median), 20000))
        start = self.rng.randrange(len(self.corpus) - n)
        t = self.corpus[start : start + n].strip() or "ok"
        if self.rng.random() < 0.01:
            t = t[: n // 2] + " " + self.rng.choice(_LT) + " " + t[n // 2 :]
        return t

    def exchanges(self) -> int:
        return self.rng.randint(*self.p["turns"])


def _alpaca(ts: TextSource) -> dict:
    return {"instruction": ts.text("ask"), "input": ts.text("input") if ts.rng.random() < 0.4 else "", "output": ts.text("answer")}


def _chat(ts: TextSource, user="human", assistant="gpt", rt="from", ct="value") -> list[dict]:
    out = []
    for _ in range(ts.exchanges()):
        out += [{rt: user, ct: ts.text("ask")}, {rt: assistant, ct: ts.text("answer")}]
    return out


_TOOLS = json.dumps([{"name": "get_weather", "description": "Get the current weather in a city",
                      "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "the city"}}, "required": ["city"]}}])  # fmt: skip


def _sharegpt_tools(ts: TextSource) -> dict:
    conv = []
    for _ in range(ts.exchanges()):
        conv.append({"from": "human", "value": ts.text("ask")})
        if ts.rng.random() < 0.5:
            conv.append({"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": ts.text("ask")[:12]}})})
            conv.append({"from": "observation", "value": json.dumps({"temperature": ts.rng.randint(-5, 35), "condition": "sunny"})})
        conv.append({"from": "gpt", "value": ts.text("answer")})
    return {"conversations": conv, "tools": _TOOLS}


def _with_system(ts: TextSource, rec: dict, key: str = "system") -> dict:
    if ts.rng.random() < 0.1:
        rec[key] = ts.text("ask")
    return rec


def _openai(ts: TextSource) -> list[dict]:
    msgs = [{"role": "system", "content": ts.text("ask")}] if ts.rng.random() < 0.1 else []
    return msgs + _chat(ts, "user", "assistant", "role", "content")


# form name shown -> (form passed to fmtkit, record generator)
SHAPES: dict[str, tuple[str, Callable[[TextSource], dict]]] = {
    "alpaca": ("alpaca", _alpaca),
    "alpaca-preference": ("alpaca-preference", lambda ts: {"instruction": ts.text("ask"), "input": "", "chosen": ts.text("answer"), "rejected": ts.text("answer")}),
    "alpaca-kto": ("alpaca-kto", lambda ts: _alpaca(ts) | {"kto_tag": ts.rng.random() < 0.6}),
    "alpaca-pretrain": ("alpaca-pretrain", lambda ts: {"text": ts.text("doc")}),
    "sharegpt": ("sharegpt", lambda ts: _with_system(ts, {"conversations": _chat(ts)})),
    "sharegpt-tools": ("sharegpt", _sharegpt_tools),
    "sharegpt-preference": ("sharegpt-preference", lambda ts: {"conversations": [{"from": "human", "value": ts.text("ask")}],
                                                               "chosen": {"from": "gpt", "value": ts.text("answer")},
                                                               "rejected": {"from": "gpt", "value": ts.text("answer")}}),  # fmt: skip
    "sharegpt-kto": ("sharegpt-kto", lambda ts: {"conversations": _chat(ts), "kto_tag": ts.rng.random() < 0.6}),
    "openai": ("openai", lambda ts: {"messages": _openai(ts)}),
    "trl-text": ("trl-text", lambda ts: {"text": ts.text("doc")}),
    "trl-messages": ("trl-messages", lambda ts: {"messages": _openai(ts)}),
    "trl-prompt-completion": ("trl-prompt-completion", lambda ts: {"prompt": ts.text("ask"), "completion": ts.text("answer")}),
    "trl-preference": ("trl-preference", lambda ts: {"prompt": ts.text("ask"), "chosen": ts.text("answer"), "rejected": ts.text("answer")}),
    "trl-unpaired": ("trl-unpaired", lambda ts: {"prompt": ts.text("ask"), "completion": ts.text("answer"), "label": ts.rng.random() < 0.5}),
}
CONTAINERS = ("jsonl", "array")  # --containers adds "parquet" (needs pyarrow)
SUFFIX = {"jsonl": "jsonl", "array": "json", "parquet": "parquet"}


def make_shape(path: Path, shape: str, profile: str, container: str, n: int, seed: int) -> None:
    """``n`` records of ``shape``; an array is pretty-printed with indent 2, as LLaMA-Factory ships its demos."""
    import orjson

    rng = random.Random(f"{seed}-{shape}-{profile}")
    ts = TextSource(rng, PROFILES[profile])
    gen = SHAPES[shape][1]
    if container == "parquet":  # record batches of 1,000 rows, as datasets writes them
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist([gen(ts) for _ in range(n)]), path, row_group_size=1000)
        return
    with path.open("wb") as fh:
        if container == "array":
            fh.write(b"[\n")
        for i in range(n):
            rec = gen(ts)
            if container == "jsonl":
                fh.write(orjson.dumps(rec) + b"\n")
            else:
                body = orjson.dumps(rec, option=orjson.OPT_INDENT_2).replace(b"\n", b"\n  ")
                fh.write(b"  " + body + (b",\n" if i < n - 1 else b"\n"))
        if container == "array":
            fh.write(b"]\n")


def ensure_shape(shape: str, profile: str, container: str, n: int, seed: int) -> Path:
    folder = HERE / "data" / "shapes"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{shape}_{profile}_{n}_s{seed}.{SUFFIX[container]}"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        make_shape(tmp, shape, profile, container, n, seed)
        tmp.replace(path)
    warm = folder / f"{shape}_warm.jsonl"  # what the child validates before the clock starts
    if not warm.exists():
        make_shape(warm, shape, "short", "jsonl", 1, seed)
    return path


SHAPE_CHILD = r"""
import json, sys, time
mode, path, form = sys.argv[1], sys.argv[2], sys.argv[3]
findings, n = {}, 0
clock = time.process_time  # CPU seconds: steadier than wall time on a shared machine
if path.endswith(".parquet"):
    import pyarrow.parquet  # imports are not per-record costs
if mode == "floor":
    import orjson
    loads = orjson.loads
    t = clock()
    if path.endswith(".jsonl"):
        with open(path, "rb") as fh:
            for line in fh:
                loads(line)
                n += 1
    elif path.endswith(".parquet"):  # the rows as Python values, a record batch at a time
        import pyarrow.parquet as pq
        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
            n += len(batch.to_pylist())
    else:
        with open(path, "rb") as fh:
            n = len(loads(fh.read()))
    dt = clock() - t
else:
    import fmtkit, resource
    jobs = 2 if mode == "jobs2" else 1
    if mode in ("jobs2", "wall"):
        clock = time.perf_counter  # wall time: what two processes save
    fmtkit.validate(sys.argv[4], form=form)  # one record first: imports (and their compiling) are not per-record costs
    log = None
    if jobs > 1:  # each worker's CPU seconds (since its fork), logged after each of its byte ranges
        import os, tempfile
        from fmtkit import record_loop
        log = tempfile.NamedTemporaryFile("r", prefix="fmtkit-bench-cpu-")
        unit_fn = "run_unit" if hasattr(record_loop, "run_unit") else "_check_shard"  # this code's, or an older checkout's
        inner = getattr(record_loop, unit_fn)
        def logged(*args, inner=inner, name=log.name):
            out = inner(*args)
            with open(name, "a") as fh:
                fh.write(f"{os.getpid()} {time.process_time()}\n")
            return out
        logged.__module__, logged.__qualname__ = inner.__module__, inner.__qualname__  # pickled by name
        setattr(record_loop, unit_fn, logged)
    t, cpu = clock(), time.process_time()
    s = fmtkit.validate(path, form=form, jobs=jobs).summary
    dt = clock() - t
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = [time.process_time() - cpu, workers.ru_utime + workers.ru_stime]  # this process, its workers
    if log is not None:
        per = {}
        for ln in log.read().split("\n"):
            if ln:
                pid, sec = ln.split()
                per[pid] = max(per.get(pid, 0.0), float(sec))
        cpu.append(max(per.values()))  # the busiest worker
    n, findings = s["records"], s["by_rule"]
rss = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1])
print(json.dumps({"seconds": dt, "records": n, "rss_kb": rss, "findings": findings, "cpu": cpu if mode != "floor" else None}))
"""


def shape_child(mode: str, path: Path, form: str, tree: Path = REPO) -> dict:
    """One measurement in a fresh process, with the fmtkit of ``tree`` (this checkout, or ``--baseline``)."""
    warm = path.with_name(path.stem.split("_")[0] + "_warm.jsonl")
    r = subprocess.run([sys.executable, "-c", SHAPE_CHILD, mode, str(path), form, str(warm)], capture_output=True, text=True, cwd=tree, check=False)
    if r.returncode != 0:
        raise SystemExit(f"{mode} child failed on {path}:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def run_shapes(args) -> None:
    """One table: every shape x container x profile, fmtkit against the floor measured on the same file in the same run."""
    shapes = args.forms.split(",") if args.forms else list(SHAPES)
    unknown = set(shapes) - set(SHAPES)
    if unknown:
        raise SystemExit(f"unknown --forms {sorted(unknown)}; use some of {', '.join(SHAPES)}")
    sizes = {"short": args.shape_records, "long": max(1, args.shape_records // args.long_divisor)}
    load = os.getloadavg()[0]
    print(f"fmtkit validate over shapes: {sizes['short']:,} short / {sizes['long']:,} long records per file, seed {args.seed}, "
          f"{os.cpu_count()} CPUs (load {load:.1f}), best of {args.repeat}", flush=True)  # fmt: skip
    rows = []
    containers = args.containers.split(",")
    for shape in shapes:
        form = SHAPES[shape][0]
        for profile in ("short", "long"):
            jsonl_rps = None
            for cont in containers:
                path = ensure_shape(shape, profile, cont, sizes[profile], args.seed)
                size_mb = path.stat().st_size / MB
                floors, runs, base = [], [], []
                for _ in range(args.repeat):  # interleaved; the fastest of each counts (the least disturbed by other work)
                    floors.append(shape_child("floor", path, form))
                    runs.append(shape_child("validate", path, form))
                    if args.baseline:
                        base.append(shape_child("validate", path, form, args.baseline))
                f = min(floors, key=lambda r: r["seconds"])
                v = min(runs, key=lambda r: r["seconds"])
                assert v["records"] == f["records"] == sizes[profile], (v, f)
                rps = v["records"] / v["seconds"]
                row = {"shape": shape, "profile": profile, "container": cont, "records": v["records"], "size_mb": size_mb,
                       "floor_rps": f["records"] / f["seconds"], "rps": rps, "mbps": size_mb / v["seconds"], "ratio": f["seconds"] / v["seconds"],
                       "rss_mb": v["rss_kb"] / 1024, "floor_rss_mb": f["rss_kb"] / 1024, "findings": v["findings"],
                       "vs_jsonl": rps / jsonl_rps if jsonl_rps else None,
                       "baseline_ratio": f["seconds"] / min(r["seconds"] for r in base) if base else None}  # fmt: skip
                if cont == "jsonl":
                    jsonl_rps = rps
                rows.append(row)
                was = f" (baseline {row['baseline_ratio']:.2f}x)" if base else ""
                print(f"  {shape} {profile} {cont}: {rps:,.0f} rec/s, {row['ratio']:.2f}x floor{was}, {row['rss_mb']:.0f} MB", flush=True)
    print()
    extra = ("| baseline vs floor ", "---:|") if args.baseline else ("", "")
    print(f"| form | records | container | MB | floor rec/s | fmtkit rec/s | MB/s | vs floor {extra[0]}| array vs JSONL | peak RSS (floor) | findings |")
    print(f"|---|---|---|---:|---:|---:|---:|---:|{extra[1]}---:|---:|---|")
    for r in rows:
        target = 0.8 if r["shape"] in ("alpaca", "sharegpt", "openai") else 0.5
        vs = f"{r['vs_jsonl']:.2f}x" + ("" if r["vs_jsonl"] >= 0.8 else " MISSED") if r["vs_jsonl"] is not None else "-"
        print(f"| {r['shape']} | {r['profile']} {r['records']:,} | {r['container']} | {r['size_mb']:.0f} | {r['floor_rps']:,.0f} | {r['rps']:,.0f} "
              f"| {r['mbps']:.0f} | {r['ratio']:.2f}x{'' if r['ratio'] >= target else ' MISSED'} "
              f"{'' if r['baseline_ratio'] is None else '| %.2fx ' % r['baseline_ratio']}| {vs} | {r['rss_mb']:.0f} MB ({r['floor_rss_mb']:.0f}) "
              f"| {', '.join(f'{k} {v}' for k, v in r['findings'].items()) or 'none'} |")  # fmt: skip
    print("\ntargets: vs floor >= 0.8x for alpaca, sharegpt, openai; >= 0.5x for the others; an array >= 0.8x of the same records in JSON Lines")
    if args.jobs_mb:
        jobs_rows = run_jobs(args, args.jobs_forms.split(","), [c for c in containers if c != "parquet"])  # --jobs splits JSON only
    else:
        jobs_rows = []
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"sizes": sizes, "rows": rows, "jobs": jobs_rows}, indent=2))


def run_jobs(args, shapes: list[str], containers: list[str]) -> list[dict]:
    """``--jobs 2`` against one process, wall time in the same run, on files of about ``--jobs-mb`` MB (short records)."""
    rows = []
    print(f"\n--jobs 2 against 1 process, files of ~{args.jobs_mb} MB, wall time, best of {args.repeat} (load {os.getloadavg()[0]:.1f})")
    print("| form | container | MB | records | 1 process rec/s | --jobs 2 rec/s | speed-up | CPU s: 1 process / --jobs 2 parent + workers (busiest) | CPU speed-up |")
    print("|---|---|---:|---:|---:|---:|---:|---|---:|")
    for shape in shapes:
        sample = ensure_shape(shape, "short", "jsonl", 2000, args.seed)
        n = max(2000, int(2000 * args.jobs_mb * MB / sample.stat().st_size))
        for cont in containers:
            path = ensure_shape(shape, "short", cont, n, args.seed)
            trees = [("", REPO)] + ([(" (baseline)", args.baseline)] if args.baseline else [])
            runs: dict[str, tuple[list, list]] = {label: ([], []) for label, _ in trees}
            for _ in range(args.repeat):  # interleaved: load from elsewhere hits every tree alike
                for label, tree in trees:
                    runs[label][0].append(shape_child("wall", path, SHAPES[shape][0], tree))
                    runs[label][1].append(shape_child("jobs2", path, SHAPES[shape][0], tree))
            for label, (one, two) in runs.items():
                r1, r2 = min(one, key=lambda r: r["seconds"]), min(two, key=lambda r: r["seconds"])
                a, b = r1["seconds"], r2["seconds"]
                rows.append({"shape": shape, "container": cont + label, "records": n, "size_mb": path.stat().st_size / MB, "one_s": a, "two_s": b,
                             "cpu_one": r1["cpu"], "cpu_two": r2["cpu"]})  # fmt: skip
                print(f"| {shape} | {cont}{label} | {path.stat().st_size / MB:.0f} | {n:,} | {n / a:,.0f} | {n / b:,.0f} | {a / b:.2f}x{'' if a / b >= 1.8 else ' MISSED'} "
                      f"| {r1['cpu'][0]:.2f} / {r2['cpu'][0]:.2f} + {r2['cpu'][1]:.2f} ({r2['cpu'][2]:.2f}) "
                      f"| {r1['cpu'][0] / (r2['cpu'][0] + r2['cpu'][2]):.2f}x |", flush=True)  # fmt: skip
    return rows


# -- main ---------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=None, help="runs of (a), (b), (c), the median counts (default 3); with --shapes, runs per file, the fastest counts (default 2)")
    ap.add_argument("--schema-records", type=int, default=None, help="subset for (d); default records/10")
    ap.add_argument("--datasets-records", type=int, default=None, help="subset for (e); default records/4")
    ap.add_argument("--rss-scale", type=int, default=2, help="also measure the peak RSS of (b) on a file this many times bigger (0: skip)")
    ap.add_argument("--skip-datasets", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--shapes", action="store_true", help="instead: every bundled form, JSON Lines and JSON array, short and long records, against each file's floor")
    ap.add_argument("--shape-records", type=int, default=10_000, help="with --shapes: records per file of short records")
    ap.add_argument("--long-divisor", type=int, default=5, help="with --shapes: files of long records hold --shape-records / this many")
    ap.add_argument("--forms", default=None, help=f"with --shapes: only these, comma-separated ({', '.join(SHAPES)})")
    ap.add_argument("--containers", default=",".join(CONTAINERS), help="with --shapes: jsonl, array and/or parquet")
    ap.add_argument("--jobs-mb", type=int, default=0, help="with --shapes: also time --jobs 2 against 1 process (wall) on files of about this many MB")
    ap.add_argument("--jobs-forms", default="alpaca,sharegpt,openai", help="with --jobs-mb: these forms")
    ap.add_argument("--baseline", type=Path, default=None, help="with --shapes: also time the fmtkit of this checkout (e.g. of main), interleaved, in the same run")
    args = ap.parse_args()
    if args.shapes:
        args.repeat = args.repeat or 2
        run_shapes(args)
        return
    args.repeat = args.repeat or 3

    n = args.records
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"fmtkit validate benchmark: {n:,} ShareGPT records, seed {args.seed}, {os.cpu_count()} CPUs (load {load:.1f}), median of {args.repeat}", flush=True)
    path = ensure_data(n, args.seed)
    size_mb = path.stat().st_size / MB
    rows: dict[str, dict] = {}

    def row(key: str, what: str, records: int, seconds: float, **extra) -> None:
        rows[key] = {"what": what, "records": records, "seconds": seconds, "rps": records / seconds, **extra}
        print(f"  {key}: {what}: {records / seconds:,.0f} records/s ({seconds:.2f} s for {records:,})", flush=True)

    floor(path)  # warm the page cache
    runs_a, runs_b, runs_c = [], [], []
    for _ in range(args.repeat):  # interleaved, so that load from elsewhere hits all three alike
        runs_a.append(floor(path))
        runs_b.append(fmtkit_child(path, 1))
        runs_c.append(fmtkit_child(path, 2))
    row("a", "read lines + orjson.loads (floor)", n, statistics.median(runs_a))
    b = sorted(runs_b, key=lambda r: r["seconds"])[len(runs_b) // 2]
    c = sorted(runs_c, key=lambda r: r["seconds"])[len(runs_c) // 2]
    assert b["records"] == n, b
    assert c["records"] == n and c["by_rule"] == b["by_rule"], (c, b)
    row("b", "fmtkit validate, 1 process", n, b["seconds"], rss_mb=max(r["rss_kb"] for r in runs_b) / 1024, findings=b["by_rule"], cpu_s=b["cpu_seconds"])
    row("c", "fmtkit validate --jobs 2", n, c["seconds"], rss_mb=c["rss_kb"] / 1024, workers_rss_mb=c["children_rss_kb"] / 1024, cpu_s=c["cpu_seconds"])

    k = args.schema_records or max(1000, n // 10)
    sub = head_file(path, k)
    row("d", "jsonschema Draft202012 iter_errors loop", k, plain_jsonschema(sub))

    if not args.skip_datasets:
        k = args.datasets_records or max(1000, n // 4)
        sub = head_file(path, k)
        try:
            t_load, t_map = datasets_map(sub)
        except ModuleNotFoundError:
            print("  e: datasets is not installed (pip install 'fmtkit[train]'); skipped")
        else:
            row("e", "datasets load_dataset + .map ShareGPT->OpenAI, 1 proc", k, t_load + t_map, load_s=t_load, map_s=t_map)

    if args.rss_scale > 1:
        big = ensure_data(n * args.rss_scale, args.seed + 1)
        r = fmtkit_child(big, 1)
        rows["rss_big"] = {"what": f"fmtkit validate, 1 process, {n * args.rss_scale:,} records", "records": r["records"],
                           "seconds": r["seconds"], "rps": r["records"] / r["seconds"], "rss_mb": r["rss_kb"] / 1024}  # fmt: skip
        print(f"  peak RSS of (b) on {n * args.rss_scale:,} records: {r['rss_kb'] / 1024:.0f} MB ({r['records'] / r['seconds']:,.0f} records/s)")

    h = help_check()
    rows["help"] = h

    # -- the table -----------------------------------------------------------------------
    a_rps, b_rps = rows["a"]["rps"], rows["b"]["rps"]
    print()
    print(f"| what ({n:,} ShareGPT records, {size_mb:.0f} MB) | records/s | vs (b) | CPU s | peak RSS |")
    print("|---|---:|---:|---:|---:|")
    for key in ("a", "b", "c", "d", "e"):
        if key in rows:
            r = rows[key]
            rss = f"{r['rss_mb']:.0f} MB" if "rss_mb" in r else "-"
            if key == "c":
                rss += f" (+ workers {r['workers_rss_mb']:.0f} MB)"
            cpu = f"{r['cpu_s']:.2f}" if "cpu_s" in r else "-"
            print(f"| ({key}) {r['what']} | {r['rps']:,.0f} | {r['rps'] / b_rps:.2f}x | {cpu} | {rss} |")
    if "rss_big" in rows:
        r = rows["rss_big"]
        print(f"| (b) on {r['records']:,} records | {r['rps']:,.0f} | {r['rps'] / b_rps:.2f}x | - | {r['rss_mb']:.0f} MB |")
    print()
    checks = [
        ("(b) >= 0.5x floor (a)", b_rps / a_rps, 0.5),
        ("(c) >= 1.8x (b)", rows["c"]["rps"] / b_rps, 1.8),
        ("(b) >= 15x jsonschema (d)", b_rps / rows["d"]["rps"], 15),
    ]
    if "e" in rows:
        checks.append(("(b) >= 5x datasets (e)", b_rps / rows["e"]["rps"], 5))
    print("| target | measured | |")
    print("|---|---:|---|")
    for name, got, want in checks:
        print(f"| {name} | {got:.2f}x | {'ok' if got >= want else 'MISSED'} |")
    rss_all = [rows["b"]["rss_mb"]] + ([rows["rss_big"]["rss_mb"]] if "rss_big" in rows else [])
    print(f"| peak RSS (b) < 200 MB | {max(rss_all):.0f} MB | {'ok' if max(rss_all) < 200 else 'MISSED'} |")
    print(f"| (c) CPU used vs (b) (parallel overhead; 1.0 is ideal) | {rows['c']['cpu_s'] / rows['b']['cpu_s']:.2f}x | |")
    heavy = h["heavy_modules"]
    print(f"| fmtkit --help: no torch/transformers/datasets | {h['process_wall_s']:.2f} s, heavy: {heavy or 'none'} | {'ok' if not heavy else 'MISSED'} |")
    print(f"\nduplicate hashes: 16 bytes per record (array('q') hash + line) = {16 * n / MB:.1f} MB for {n:,} records (O(n) by design)")
    print(f"findings of (b): {rows['b']['findings']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"records": n, "size_mb": size_mb, "cpus": os.cpu_count(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
