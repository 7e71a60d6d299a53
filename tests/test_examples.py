"""The LLaMA-Factory style configs in examples/ run unchanged through ``fmtkit train``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runner import run_cli_joined

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


fmtkit = run_cli_joined


def test_there_is_an_example_per_stage():
    stages = {p.stem.removeprefix("qwen3_lora_") for p in EXAMPLES}
    assert {"sft", "dpo", "kto", "pretrain", "reward"} <= stages


@pytest.mark.parametrize("config", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_config_passes_the_gate(config, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)  # the configs name dataset/ relative to the repository
    # the configs' models/ folder is not downloaded in tests: an empty folder stands in (fmtkit never downloads at train time)
    code, out = fmtkit(capsys, "train", config, "--dry-run", f"model_name_or_path={tmp_path}")
    assert code == 0, out
    assert "dry run" in out and "training samples" in out


@pytest.mark.train
def test_sft_example_trains_on_the_tiny_model(tiny_model, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    out_dir = tmp_path / "sft"
    code, out = fmtkit(
        capsys, "train", ROOT / "examples" / "qwen3_lora_sft.yaml",
        f"model_name_or_path={tiny_model}", f"output_dir={out_dir}", "max_steps=2", "cutoff_len=128", "template=chatml",
    )  # fmt: skip
    assert code == 0, out
    assert (out_dir / "adapter_config.json").is_file()
    summary = json.loads((out_dir / "train_summary.json").read_text())
    assert summary["global_step"] == 2 and summary["train_samples"] == 18  # alpaca 10 + sharegpt 5 + openai 3
    assert 0 < summary["train_loss"] < 100
