"""LLaMA-Factory's truncation (the default) in real tiny runs: every row is kept, cut to cutoff_len, and the counts
in ``train_summary.json`` are those of the rows the trainer really consumed; ``truncation: trl`` keeps TRL's way.

The trainer's own training set is read from inside the run (the dataloader a callback is handed when training
starts), then compared with the data check's figures and with lengths the test renders itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runner import run_cli_joined
from test_train_cli import config, data_dir  # noqa: F401 - fixtures

pytestmark = [pytest.mark.train, pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing")]
pytest.importorskip("trl")

fmtkit = run_cli_joined
IGNORE = -100
LONG = "Repeat after me: " + "apples and pears and plums " * 12


def _write_long_data(folder: Path) -> Path:
    """SFT, pairs, KTO and pretraining rows, some much longer than a cutoff_len of 48 (prompts and answers)."""
    folder.mkdir(parents=True, exist_ok=True)
    sft = [{"instruction": f"Add {i} and {i}.", "output": f"{2 * i}."} for i in range(3)]
    sft += [{"instruction": LONG, "output": "Done."}, {"instruction": "Count.", "output": " ".join(map(str, range(60)))}]
    pairs = [{"instruction": p, "chosen": "No, tigers are carnivores.", "rejected": "Yes."} for p in (LONG, LONG + "?", "Do tigers eat grass?")]
    pairs.append({"instruction": "Count.", "chosen": " ".join(map(str, range(50))), "rejected": "No."})
    kto = [{"instruction": p, "output": "Hello!", "kto_tag": i % 2 == 0} for i, p in enumerate([LONG, "Say hello.", LONG + "!", "Hi."])]
    texts = [{"text": f"Paris is the capital of France. Fact number {i}. " * (1 + 3 * (i % 2))} for i in range(6)]
    files = {"sft.jsonl": sft, "pairs.jsonl": pairs, "kto.jsonl": kto, "texts.jsonl": texts}
    for name, rows in files.items():
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    info = {
        "sft": {"file_name": "sft.jsonl", "columns": {"prompt": "instruction", "response": "output"}},
        "pairs": {"file_name": "pairs.jsonl", "ranking": True, "columns": {"prompt": "instruction", "chosen": "chosen", "rejected": "rejected"}},
        "kto": {"file_name": "kto.jsonl", "columns": {"prompt": "instruction", "response": "output", "kto_tag": "kto_tag"}},
        "texts": {"file_name": "texts.jsonl", "columns": {"prompt": "text"}},
    }
    (folder / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    return folder


class Consumed:
    """A transformers callback that keeps the dataset of the dataloader the trainer trains from."""

    def __new__(cls):
        from transformers import TrainerCallback

        class Keep(TrainerCallback):
            dataset = None

            def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
                Keep.dataset = train_dataloader.dataset

        return Keep()


def _run(config_path: Path, **overrides):
    """``fmtkit train`` in-process through the Python API, with the Consumed callback: (summary, consumed dataset, log)."""
    from trainer_plugin.config import load_config, read_yaml
    from trainer_plugin.run import train

    cfg, notes = load_config(read_yaml(config_path), [f"{k}={v}" for k, v in overrides.items()])
    log: list[str] = []
    keep = Consumed()
    summary = train(cfg, notes, echo=log.append, callbacks=[keep])
    return summary, keep.dataset, "\n".join(log)


def _full_lengths(cfg_path: Path, stage: str) -> list[int]:
    """Each row's untruncated length (prompt + the longer answer for pairs), rendered here with the run's template."""
    from transformers import AutoTokenizer

    from fmtkit.templates import chat_template
    from trainer_plugin.config import load_config, read_yaml
    from trainer_plugin.run import prepare_data
    from trainer_plugin.stages import get_stage

    cfg, _ = load_config(read_yaml(cfg_path), [f"stage={stage}"])
    tok = AutoTokenizer.from_pretrained(cfg.model_name_or_path)
    tok.chat_template = chat_template(cfg.template)
    rows = prepare_data(cfg, get_stage(cfg.trainer_stage), lambda _: None).train

    def length(messages, **kwargs) -> int:
        return len(tok.apply_chat_template(messages, return_dict=True, **kwargs)["input_ids"])

    out = []
    for row in rows:
        if "messages" in row:
            out.append(length(row["messages"], **(row.get("chat_template_kwargs") or {})))
        else:
            answers = [k for k in ("chosen", "rejected", "completion") if k in row]
            out.append(max(length(row["prompt"] + row[k]) for k in answers))
    return out


STAGES = {  # stage override -> (dataset, the trainer's column holding a row's whole sequence or its parts)
    "sft": ("sft", ("input_ids",)),
    "dpo": ("pairs", ("prompt_ids", "chosen_ids")),
    "orpo": ("pairs", ("chosen_input_ids",)),
    "kto": ("kto", ("prompt_ids", "completion_ids")),
    "rm": ("pairs", ("chosen_ids",)),
}


@pytest.mark.parametrize("name", list(STAGES))
def test_llamafactory_truncation_keeps_every_row_and_counts_what_the_trainer_consumed(tmp_path, config, name):
    data = _write_long_data(tmp_path / "data")
    dataset, columns = STAGES[name]
    stage = {"orpo": {"stage": "dpo", "pref_loss": "orpo"}}.get(name, {"stage": name})
    path, out = config(dataset=dataset, dataset_dir=str(data), cutoff_len=48, **stage)
    full = _full_lengths(path, stage["stage"])
    assert max(full) > 48  # the data really needs truncating

    summary, consumed, log = _run(path)
    warnings = summary.data_warnings
    assert warnings["truncation"] == "llamafactory"
    assert warnings["samples_dropped"] == {}  # LLaMA-Factory keeps every row: so does fmtkit
    assert len(consumed) == warnings["samples_trained"] == summary.train_samples == len(full)
    lengths = [sum(len(row[c]) for c in columns) for row in consumed]
    assert max(lengths) <= 48
    assert warnings["samples_truncated"] == sum(n > 48 for n in full) > 0
    assert [n for n in lengths if n < 47] == [n for n in full if n <= 48 and n < 47]  # rows that fit are untouched
    saved = json.loads((out / "train_summary.json").read_text())
    assert saved["train_samples"] == len(consumed) and saved["data_warnings"]["samples_truncated"] == warnings["samples_truncated"]
    assert f"{warnings['samples_truncated']} of {len(full)} samples" in log


def test_trl_truncation_stays_available_and_drops_what_it_cannot_train(tmp_path, config):
    data = _write_long_data(tmp_path / "data")
    path, _ = config(stage="dpo", dataset="pairs", dataset_dir=str(data), cutoff_len=48, truncation="trl")
    summary, consumed, log = _run(path)
    warnings = summary.data_warnings
    assert warnings["truncation"] == "trl"
    assert warnings["samples_dropped"] == {"prompt_fills_cutoff_len": 2}
    assert len(consumed) == warnings["samples_trained"] == summary.train_samples == 2


def test_pretraining_blocks_as_llamafactory_packs_them(tmp_path, config):
    data = _write_long_data(tmp_path / "data")
    path, _ = config(stage="pt", dataset="texts", dataset_dir=str(data), cutoff_len=32, template=None)
    summary, consumed, _ = _run(path)
    warnings = summary.data_warnings
    assert {len(row["input_ids"]) for row in consumed} == {32}
    assert warnings["packed_sequences"] == len(consumed)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(summary.model)
    texts = [json.loads(line)["text"] for line in (data / "texts.jsonl").read_text().splitlines()]
    total = sum(len(tok(t + tok.eos_token, add_special_tokens=False)["input_ids"]) for t in texts)
    assert len(consumed) == total // 32  # one group: the remainder under a block is dropped
    assert warnings["samples_trained"] + sum(warnings["samples_dropped"].values()) == len(texts)


def test_unknown_truncation_is_a_clear_error(capsys, config):
    path, _ = config(truncation="keep_start")
    code, log = fmtkit(capsys, "train", path)
    assert code == 2 and "truncation: 'keep_start' is not one of llamafactory, trl" in log


@pytest.mark.parametrize("pref_loss", ["simpo", "orpo"])
def test_the_nan_case_trains_finite_on_every_pair_with_llamafactory_truncation(tmp_path, config, pref_loss):
    # the NaN case (prompts that fill cutoff_len, two pairs, two steps): the answers keep their share now
    from test_train_guards import _finite_adapter, _pairs

    data = _pairs(tmp_path / "long", [LONG, LONG + "?"])
    path, out = config(stage="dpo", pref_loss=pref_loss, dataset="pairs", dataset_dir=str(data), cutoff_len=24)
    summary, consumed, _ = _run(path)
    assert summary.status == "completed" and summary.nonfinite_loss_steps == 0
    assert len(consumed) == summary.train_samples == 2 and summary.data_warnings["samples_truncated"] == 2
    assert all(any(t != IGNORE for t in row["chosen_labels"]) for row in consumed)
    assert _finite_adapter(out)


def test_tokenized_path_saves_the_set_and_the_next_run_trains_from_it_without_reading_the_data(tmp_path, config):
    data = _write_long_data(tmp_path / "data")
    saved = tmp_path / "tokenized"
    path, _ = config(stage="dpo", dataset="pairs", dataset_dir=str(data), cutoff_len=48, tokenized_path=str(saved))
    first, consumed_first, log = _run(path, output_dir=tmp_path / "out1")
    assert f"tokenized set saved to {saved}" in log and (saved / "dataset_dict.json").is_file()

    # the data file is gone: only a run that does not read the data (nor tokenize it) can still train
    (data / "pairs.jsonl").unlink()
    second, consumed_second, log = _run(path, output_dir=tmp_path / "out2")
    assert f"loaded the tokenized set from {saved}" in log and "data check" not in log
    assert consumed_second["prompt_ids"] == consumed_first["prompt_ids"]
    assert consumed_second["chosen_ids"] == consumed_first["chosen_ids"]
    assert second.data_warnings == first.data_warnings and second.train_samples == first.train_samples == 4

    # a set saved for another stage, or a folder fmtkit did not fill, is refused with the way out
    code, log = fmtkit_in(path, "stage=kto")
    assert code == 2 and "tokenized for stage dpo, not kto" in log
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    code, log = fmtkit_in(path, f"tokenized_path={tmp_path / 'other'}")
    assert code == 2 and "no tokenized set saved by fmtkit train" in log and (tmp_path / "other" / "notes.txt").is_file()


def fmtkit_in(config_path: Path, *overrides: str) -> tuple[int, str]:
    """``fmtkit train`` in a subprocess: (exit code, output)."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    run = subprocess.run(
        [sys.executable, "-m", "fmtkit", "train", str(config_path), *overrides, "--dry-run"],
        capture_output=True, text=True, env=env, check=False, timeout=600,
    )  # fmt: skip
    return run.returncode, run.stdout + run.stderr


def test_rows_keep_their_tools_when_the_first_row_has_none(config):
    from trainer_plugin.config import load_config, read_yaml
    from trainer_plugin.run import prepare_data
    from trainer_plugin.stages import get_stage

    path, _ = config(stage="sft", dataset="sharegpt_sft")
    cfg, _ = load_config(read_yaml(path))
    rows = prepare_data(cfg, get_stage("sft"), lambda _: None).train
    tools = rows["tools"]
    assert tools[0] is None and "get_weather" in tools[-1]  # the first rows have no tools, the last ones do


def test_texts_too_short_for_one_block_stop_the_run_with_the_way_out(capsys, config, tmp_path):
    data = _write_long_data(tmp_path / "data")
    path, _ = config(stage="pt", dataset="texts", dataset_dir=str(data), cutoff_len=2048, template=None)
    code, log = fmtkit(capsys, "train", path, "--dry-run")
    assert code == 1 and "fill no block of cutoff_len 2048 tokens" in log and "lower cutoff_len" in log, log
