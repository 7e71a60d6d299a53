"""``fmtkit train`` / ``fmtkit export`` end to end: one real (tiny) run per stage, on the CPU.

Each run goes through the command line in this process (``fmtkit.cli.main``):
config file + overrides -> validation gate -> fmtkit.read -> TRL -> outputs.
Datasets are small folders written per session; the model is ``tiny_model``.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cli_runner import run_cli_joined

pytestmark = pytest.mark.train
pytest.importorskip("trl")

ROOT = Path(__file__).resolve().parents[1]

SHAREGPT_TOOLS = json.dumps(
    [
        {
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
)


def _write(path: Path, records: list[dict], jsonl: bool = True) -> None:
    if jsonl:
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    else:
        path.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset folder with one entry per kind of data (and one broken entry)."""
    root = tmp_path_factory.mktemp("data")
    n = 8
    _write(
        root / "alpaca_sft.json",
        [
            {"instruction": f"What is {i} plus {i}?", "input": "", "output": f"It is {2 * i}.", "system": "Be brief."}
            for i in range(n)
        ],
        jsonl=False,
    )
    sharegpt = [
        {
            "conversations": [
                {"from": "human", "value": f"Hello number {i}"},
                {"from": "gpt", "value": "Hello! How can I help?"},
                {"from": "human", "value": "Thanks."},
                {"from": "gpt", "value": "You are welcome."},
            ]
        }
        for i in range(n - 2)
    ]
    sharegpt += [
        {
            "conversations": [
                {"from": "human", "value": "Weather in Paris?"},
                {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}})},
                {"from": "observation", "value": "sunny, 20C"},
                {"from": "gpt", "value": "Sunny and 20C in Paris."},
            ],
            "tools": SHAREGPT_TOOLS,
        }
    ] * 2
    _write(root / "sharegpt_sft.jsonl", sharegpt)
    _write(
        root / "pref.json",
        [
            {"instruction": f"Do tigers eat grass? ({i})", "chosen": "No, tigers are carnivores.", "rejected": "Yes."}
            for i in range(n)
        ],
        jsonl=False,
    )
    _write(
        root / "kto.jsonl",
        [
            {"instruction": f"Say hello {i}.", "output": "Hello!" if i % 2 else "Go away.", "kto_tag": bool(i % 2)}
            for i in range(n)
        ],
    )
    _write(root / "pretrain.jsonl", [{"text": f"Paris is the capital of France. Fact number {i}."} for i in range(n)])
    _write(
        root / "broken.jsonl",
        [{"conversations": [{"from": "human", "value": "Hi"}, {"from": "bot", "value": "Hello"}]}],
    )
    # Short samples, one whose answer lies wholly past a small cutoff_len, one whose answer is cut.
    long_sft = [{"instruction": f"Add {i} and {i}.", "output": f"{2 * i}."} for i in range(4)]
    long_sft.append({"instruction": "Repeat: " + "apples and pears " * 30, "output": "Done."})
    long_sft.append({"instruction": "Count.", "output": " ".join(str(i) for i in range(60))})
    _write(root / "long_sft.jsonl", long_sft)
    info = {
        "long_sft": {"file_name": "long_sft.jsonl", "columns": {"prompt": "instruction", "response": "output"}},
        "alpaca_sft": {
            "file_name": "alpaca_sft.json",
            "columns": {"prompt": "instruction", "query": "input", "response": "output", "system": "system"},
        },
        "sharegpt_sft": {
            "file_name": "sharegpt_sft.jsonl",
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "tools": "tools"},
        },
        "pref": {
            "file_name": "pref.json",
            "ranking": True,
            "columns": {"prompt": "instruction", "chosen": "chosen", "rejected": "rejected"},
        },
        "kto": {
            "file_name": "kto.jsonl",
            "columns": {"prompt": "instruction", "response": "output", "kto_tag": "kto_tag"},
        },
        "pretrain": {"file_name": "pretrain.jsonl", "columns": {"prompt": "text"}},
        "broken": {"file_name": "broken.jsonl", "formatting": "sharegpt"},
        "alpaca_sft_sub": {"file_name": "alpaca_sft.json", "num_samples": 3},
    }
    (root / "dataset_info.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    return root


def empty_model(tmp_path: Path) -> Path:
    """A model folder with nothing in it: a run that got as far as loading it would fail there."""
    path = tmp_path / "no-model"
    path.mkdir(exist_ok=True)
    return path


def write_config(path: Path, **keys) -> Path:
    path.write_text(yaml.safe_dump(keys, sort_keys=False), encoding="utf-8")
    return path


fmtkit = run_cli_joined


@pytest.fixture
def config(tmp_path, tiny_model, data_dir):
    """A small config writer: ``config(stage="dpo", dataset="pref", ...) -> (path, output_dir)``."""

    def make(**keys):
        out = tmp_path / "out"
        base = {
            "model_name_or_path": str(tiny_model),
            "dataset_dir": str(data_dir),
            "output_dir": str(out),
            "template": "qwen3",
            "cutoff_len": 256,
            "max_steps": 2,
            "per_device_train_batch_size": 2,
            "learning_rate": 1e-3,
            "logging_steps": 1,
        }
        return write_config(tmp_path / "train.yaml", **{**base, **keys}), out

    return make


def summary_of(out: Path) -> dict:
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["global_step"] >= 1
    assert summary["losses"] and all(math.isfinite(item["loss"]) for item in summary["losses"])
    assert math.isfinite(summary["train_loss"])
    return summary


def assert_adapter_saved(out: Path) -> None:
    for name in (
        "adapter_config.json",
        "adapter_model.safetensors",
        "tokenizer.json",
        "chat_template.jinja",
        "train_config.yaml",
    ):
        assert (out / name).is_file(), name


# --- one run per stage ----------------------------------------------------------------------


def test_sft_lora_on_mixed_datasets(capsys, config, tiny_model):
    path, out = config(stage="sft", dataset="alpaca_sft,sharegpt_sft", max_samples=6, val_size=2)
    code, log = fmtkit(capsys, "train", path)
    assert code == 0, log
    assert "no GPU found: training on the CPU" in log
    assert "step 2/2  loss" in log  # live progress
    assert "data: 10 training samples, 2 evaluation samples (alpaca_sft: 6, sharegpt_sft: 6)" in log
    summary = summary_of(out)
    assert summary["train_samples"] == 10 and summary["eval_samples"] == 2 and math.isfinite(summary["eval_loss"])
    assert summary["train_tokens"] > 0 and summary["device"] == "cpu"
    assert_adapter_saved(out)
    # the resolved config is loadable again, and names the template that is saved with the tokenizer
    assert yaml.safe_load((out / "train_config.yaml").read_text())["template"] == "qwen3"
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    model = AutoPeftModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert "<think>" in tokenizer.apply_chat_template(
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], tokenize=False
    )
    assert model.peft_config["default"].base_model_name_or_path == str(tiny_model)


def test_sft_with_packing(capsys, config):
    path, out = config(stage="sft", dataset="alpaca_sft,sharegpt_sft", packing=True)
    code, log = fmtkit(capsys, "train", path)
    assert code == 0, log
    summary_of(out)


def test_sft_full_weights_reload(capsys, config):
    path, out = config(stage="sft", dataset="alpaca_sft", finetuning_type="full", template="chatml")
    code, log = fmtkit(capsys, "train", path)
    assert code == 0, log
    summary_of(out)
    from transformers import AutoModelForCausalLM

    assert not (out / "adapter_config.json").exists()
    model = AutoModelForCausalLM.from_pretrained(out)
    assert sum(p.numel() for p in model.parameters()) > 100_000


def test_pt_packs_text(capsys, config):
    path, out = config(stage="pt", dataset="pretrain", cutoff_len=32, template=None)
    code, log = fmtkit(capsys, "train", path)
    assert code == 0, log
    assert summary_of(out)["stage"] == "pt"
    assert_adapter_saved(out)


@pytest.mark.parametrize(
    ("pref_loss", "overrides"), [("sigmoid", []), ("ipo", ["pref_ftx=0.5"]), ("orpo", []), ("simpo", ["pref_ftx=0.1"])]
)
def test_dpo_orpo_simpo(capsys, config, pref_loss, overrides):
    path, out = config(stage="dpo", dataset="pref", pref_loss=pref_loss)
    code, log = fmtkit(capsys, "train", path, *overrides)
    assert code == 0, log
    summary = summary_of(out)
    assert summary["stage"] == {"sigmoid": "dpo", "ipo": "dpo"}.get(pref_loss, pref_loss)
    assert summary["train_tokens"] > 0
    assert_adapter_saved(out)


def test_kto_with_a_batch_of_one(capsys, config):
    path, out = config(stage="kto", dataset="kto", per_device_train_batch_size=1, gradient_accumulation_steps=2)
    code, log = fmtkit(capsys, "train", path)
    assert code == 0, log
    assert "KTO needs per_device_train_batch_size >= 2" in log
    summary_of(out)
    assert yaml.safe_load((out / "train_config.yaml").read_text())["per_device_train_batch_size"] == 2


def test_rm_trains_a_sequence_classifier_adapter(capsys, config):
    path, out = config(stage="rm", dataset="pref")
    code, log = fmtkit(capsys, "train", path)
    assert code == 0, log
    summary_of(out)
    assert json.loads((out / "adapter_config.json").read_text())["task_type"] == "SEQ_CLS"
    import torch
    from peft import AutoPeftModelForSequenceClassification

    model = AutoPeftModelForSequenceClassification.from_pretrained(out, num_labels=1)
    with torch.no_grad():
        assert model(input_ids=torch.tensor([[5, 6, 7]])).logits.shape == (1, 1)


# --- assistant-only loss --------------------------------------------------------------------


def _collated_labels(tiny_model, tmp_path, rows, **keys):
    """Build the SFT trainer as a run would, and collate its first training example."""
    from trainer_plugin.config import load_config
    from trainer_plugin.data import to_dataset
    from trainer_plugin.run import load_tokenizer
    from trainer_plugin.stages import StageContext, get_stage

    cfg, _ = load_config(
        {
            "model_name_or_path": str(tiny_model),
            "dataset": "x",
            "output_dir": str(tmp_path / "o"),
            "template": "qwen3",
            **keys,
        }
    )
    stage = get_stage("sft")
    tokenizer = load_tokenizer(cfg, stage, echo=lambda _: None)
    ctx = StageContext(
        cfg, tokenizer, to_dataset(rows), None, use_cpu=True, bf16=False, fp16=False, activation_checkpointing=False
    )
    trainer = stage.build(ctx)
    batch = trainer.data_collator([trainer.train_dataset[0]])
    return tokenizer, batch["input_ids"][0].tolist(), batch["labels"][0].tolist()


@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing")
def test_assistant_only_loss_trains_only_assistant_tokens(tiny_model, tmp_path):
    from fmtkit.sample import Sample, Turn
    from trainer_plugin.data import sft_row

    sample = Sample(
        system="Be brief.",
        turns=[Turn("user", "Hi there"), Turn("assistant", "Hello"), Turn("user", "Bye"), Turn("assistant", "Goodbye")],
    )
    tokenizer, ids, labels = _collated_labels(tiny_model, tmp_path, [sft_row(sample)])
    trained = tokenizer.decode([label for label in labels if label != -100])
    # every answer gets qwen3's empty think block and its stop, with the newline after it (LLaMA-Factory's tokens)
    assert trained == "<think>\n\n</think>\n\nHello<|im_end|>\n<think>\n\n</think>\n\nGoodbye<|im_end|>\n"
    for i, label in enumerate(labels):
        assert label in (-100, ids[i])  # labels are the inputs themselves, or masked
    assert "Hi there" not in trained and "Be brief" not in trained and "Bye<" not in trained

    _, ids, labels = _collated_labels(tiny_model, tmp_path, [sft_row(sample)], train_on_prompt=True)
    assert labels == ids  # train_on_prompt: every token is trained


def test_a_template_without_generation_markers_is_refused_before_training(capsys, config, tiny_model, tmp_path):
    plain = tmp_path / "plain.jinja"
    plain.write_text("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}", encoding="utf-8")
    path, out = config(stage="sft", dataset="alpaca_sft", template=str(plain))
    code, log = fmtkit(capsys, "train", path)
    # fmtkit's message, before the model loads (TRL would refuse the template later, in its own words)
    assert code == 1, log
    assert "every training sample is all-masked" in log and "no {% generation %} markers" in log
    assert "train_on_prompt: true" in log and "loading" not in log and not out.exists()
    code, log = fmtkit(capsys, "train", path, "--dry-run")
    assert code == 1 and "all-masked" in log
    code, log = fmtkit(capsys, "train", path, "train_on_prompt=true")
    assert code == 0, log
    assert json.loads((out / "train_summary.json").read_text())["data_warnings"]["samples_dropped"] == {}


# --- the data check before training ---------------------------------------------------------


def _loss_tokens_past(tokenizer, sample: dict, cutoff: int) -> tuple[int, int, int]:
    """(length, trained tokens, trained tokens past ``cutoff``) of an alpaca record, by the tokenizer itself."""
    messages = [{"role": "user", "content": sample["instruction"]}, {"role": "assistant", "content": sample["output"]}]
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    mask = out["assistant_masks"]
    return len(out["input_ids"]), sum(mask), sum(mask[cutoff:])


def test_samples_over_cutoff_len_are_warned_about_and_counted(capsys, config, data_dir):
    from transformers import AutoTokenizer

    from fmtkit.templates import chat_template

    cutoff = 48
    # TRL's truncation (the first cutoff_len tokens); LLaMA-Factory's: tests/test_train_truncation.py
    path, out = config(stage="sft", dataset="long_sft", cutoff_len=cutoff, max_steps=1, truncation="trl")
    code, log = fmtkit(capsys, "train", path)
    assert code == 0, log
    tokenizer = AutoTokenizer.from_pretrained(yaml.safe_load(path.read_text())["model_name_or_path"])
    tokenizer.chat_template = chat_template("qwen3")
    records = [json.loads(line) for line in (data_dir / "long_sft.jsonl").read_text().splitlines()]
    counts = [_loss_tokens_past(tokenizer, r, cutoff) for r in records]
    over = sum(n > cutoff for n, _, _ in counts)
    lost = sum(past for _, _, past in counts)
    all_masked = sum(1 for _, sup, past in counts if sup and past == sup)
    assert (over, all_masked) == (2, 1) and lost > 0  # the data is as intended
    summary = json.loads((out / "train_summary.json").read_text())
    warnings = summary["data_warnings"]
    assert (warnings["samples_total"], warnings["samples_trained"], summary["train_samples"]) == (6, 5, 5)
    assert warnings["cutoff_len"] == cutoff and warnings["over_cutoff_effect"] == "truncated"
    # the sample whose answer lies past the cutoff is dropped, the other one over it is truncated
    assert warnings["samples_truncated"] == over - all_masked == 1
    assert warnings["samples_dropped"] == {"answer_past_cutoff_len": 1}
    assert warnings["supervised_tokens_lost"] == lost
    assert warnings["template_problems"] == {}
    # printed before the model loads
    assert f"warning: 1 of 6 samples (16.7%) exceed cutoff_len {cutoff} and are truncated: {lost:,} trained tokens" in log
    assert "warning: 1 of 6 samples dropped, training on nothing: every trained token lies past cutoff_len" in log
    assert log.index("data check (6 training samples") < log.index("loading ")


def test_data_check_is_quiet_on_good_data_and_names_template_problems(capsys, config, tmp_path):
    path, _ = config(stage="sft", dataset="alpaca_sft")
    code, log = fmtkit(capsys, "train", path, "--dry-run")
    assert code == 0 and "data check (8 training samples" in log and "warning" not in log, log
    # markers around the answer but not its end-of-turn token: the model would never learn to stop
    eot_out = tmp_path / "eot_out.jinja"
    eot_out.write_text(
        "{%- for m in messages %}{{- '<|im_start|>' + m['role'] + '\\n' }}"
        "{%- if m['role'] == 'assistant' %}{% generation %}{{- m['content'] }}{% endgeneration %}"
        "{%- else %}{{- m['content'] }}{%- endif %}{{- '<|im_end|>\\n' }}{%- endfor %}",
        encoding="utf-8",
    )
    path, _ = config(stage="sft", dataset="alpaca_sft", template=str(eot_out))
    code, log = fmtkit(capsys, "train", path, "--dry-run")
    assert code == 0 and "warning: alpaca_sft: the end-of-turn token '<|im_end|>'" in log, log


def test_every_sample_all_masked_by_cutoff_len_stops_the_run(capsys, config):
    path, out = config(stage="sft", dataset="alpaca_sft", cutoff_len=8, truncation="trl")
    code, log = fmtkit(capsys, "train", path)
    assert code == 1 and "every training sample is dropped" in log and "loading" not in log, log
    code, log = fmtkit(capsys, "train", path, "train_on_prompt=true", "--dry-run")
    assert code == 0 and "8 of 8 samples (100.0%) exceed cutoff_len 8 and are truncated" in log, log
    # a reward model drops the pairs longer than cutoff_len: all of them here
    path, _ = config(stage="rm", dataset="pref", cutoff_len=8, truncation="trl")
    code, log = fmtkit(capsys, "train", path, "--dry-run")
    assert code == 1 and "which the reward trainer drops" in log, log
    # LLaMA-Factory's truncation keeps every row, each answer with its share of cutoff_len
    code, log = fmtkit(capsys, "train", path, "truncation=llamafactory", "--dry-run")
    assert code == 0 and "8 of 8 samples (100.0%) exceed cutoff_len 8 and are truncated" in log, log


def test_rows_made_in_memory_get_the_template_check(config, tiny_model, tmp_path):
    from fmtkit.sample import Sample, Turn
    from trainer_plugin.checks import AllMaskedError
    from trainer_plugin.config import load_config, read_yaml
    from trainer_plugin.data import sft_row, to_dataset
    from trainer_plugin.run import train_on_datasets

    plain = tmp_path / "plain.jinja"
    plain.write_text("{% for m in messages %}{{ m['content'] }}\n{% endfor %}", encoding="utf-8")
    path, out = config(stage="sft", dataset="alpaca_sft", template=str(plain))
    cfg, _ = load_config(read_yaml(path))
    rows = to_dataset([sft_row(Sample(turns=[Turn("user", "Hi"), Turn("assistant", "Hello")]))])
    with pytest.raises(AllMaskedError, match="all-masked") as caught:
        train_on_datasets(cfg, rows, echo=lambda _: None)
    assert caught.value.exit_code == 1 and not out.exists()


# --- the gate and the config errors ---------------------------------------------------------


def test_invalid_data_stops_the_run_before_any_model_loads(capsys, config, tmp_path):
    # A model path that does not exist: had the run got as far as loading it, it would fail differently.
    path, out = config(stage="sft", dataset="alpaca_sft,broken", model_name_or_path=str(empty_model(tmp_path)))
    code, log = fmtkit(capsys, "train", path)
    assert code == 1, log
    assert "broken.jsonl" in log and "bot" in log
    assert "no model was loaded" in log and "loading" not in log
    assert not out.exists()


def test_data_of_the_wrong_kind_for_the_stage_is_refused(capsys, config, tmp_path):
    path, _ = config(stage="sft", dataset="pref", model_name_or_path=str(empty_model(tmp_path)))
    code, log = fmtkit(capsys, "train", path)
    assert code == 1 and "ranking" in log, log


def test_unknown_key_fails_with_a_suggestion(capsys, config):
    path, _ = config(stage="sft", dataset="alpaca_sft", lora_rnak=4)
    code, log = fmtkit(capsys, "train", path)
    assert code == 2 and "unknown config key 'lora_rnak' (did you mean lora_rank" in log
    path, _ = config(stage="sft", dataset="alpaca_sft")
    code, log = fmtkit(capsys, "train", path, "nmu_train_epochs=1")
    assert code == 2 and "did you mean num_train_epochs" in log


def test_dry_run_checks_data_without_loading_the_model(capsys, config, tmp_path):
    path, out = config(stage="kto", dataset="kto", model_name_or_path=str(empty_model(tmp_path)))
    code, log = fmtkit(capsys, "train", path, "--dry-run")
    assert code == 0, log
    assert "dry run" in log and "data: 8 training samples" in log and not out.exists()


def test_a_model_folder_that_does_not_exist_is_an_error_before_anything_else(capsys, config, tmp_path):
    path, out = config(stage="sft", dataset="alpaca_sft,broken", model_name_or_path=str(tmp_path / "absent"))
    code, log = fmtkit(capsys, "train", path, "--dry-run")
    assert code == 2, log
    assert f"model_name_or_path '{tmp_path / 'absent'}' is not a folder here" in log
    assert f"fmtkit download REPO --local-dir {tmp_path / 'absent'}" in log
    assert "data checked" not in log and "broken.jsonl" not in log and "Repo id" not in log
    path, _ = config(stage="sft", dataset="alpaca_sft", model_name_or_path="nobody/no-such-model-here")
    code, log = fmtkit(capsys, "train", path, "--dry-run")
    assert code == 2 and "never downloads at train time" in log, log


@pytest.mark.parametrize("onto", ["model_name_or_path", "dataset_dir"])
def test_output_dir_onto_the_base_model_or_the_dataset_is_refused(capsys, config, tmp_path, onto):
    model = tmp_path / "model"
    model.mkdir()
    (model / "README.md").write_text("the base model's card")
    path, _ = config(stage="sft", dataset="alpaca_sft", model_name_or_path=str(model))
    folder = yaml.safe_load(path.read_text())[onto]
    path, _ = config(stage="sft", dataset="alpaca_sft", model_name_or_path=str(model), output_dir=folder)
    before = sorted(p.name for p in Path(folder).iterdir())
    code, log = fmtkit(capsys, "train", path, "--dry-run")
    assert code == 2 and f"output_dir {folder} is {onto}" in log, log
    assert sorted(p.name for p in Path(folder).iterdir()) == before


def test_export_onto_the_base_model_is_refused(capsys, tmp_path, tiny_model):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(tiny_model)}))
    (adapter / "adapter_model.safetensors").write_bytes(b"")
    before = {p.name: p.stat().st_mtime_ns for p in tiny_model.iterdir()}
    code, log = fmtkit(capsys, "export", "--adapter", adapter, "-o", tiny_model)
    assert code == 2 and "-o" in log and "is the base model" in log, log
    assert {p.name: p.stat().st_mtime_ns for p in tiny_model.iterdir()} == before


def test_a_hub_entry_says_train_needs_local_data(capsys, config, tmp_path):
    data = tmp_path / "hubdata"
    data.mkdir()
    (data / "dataset_info.json").write_text(json.dumps({"hubby": {"hf_hub_url": "someone/some-data"}}))
    path, _ = config(stage="sft", dataset="hubby", dataset_dir=str(data), model_name_or_path=str(empty_model(tmp_path)))
    code, log = fmtkit(capsys, "train", path, "--dry-run")
    assert code == 2, log
    assert "fmtkit train needs local data" in log and "hf_hub_url 'someone/some-data'" in log and "file_name" in log
    assert "fmtkit convert" not in log


def test_num_samples_of_an_entry_subsamples_it(capsys, config, tmp_path):
    path, _ = config(
        stage="sft", dataset="alpaca_sft_sub,alpaca_sft", max_samples=5, model_name_or_path=str(empty_model(tmp_path))
    )
    code, log = fmtkit(capsys, "train", path, "--dry-run")
    assert code == 0 and "(alpaca_sft_sub: 3, alpaca_sft: 5)" in log, log


def test_llamafactory_keys_are_named_once_and_ignored(capsys, config):
    path, out = config(
        stage="sft",
        dataset="alpaca_sft",
        do_train=True,
        preprocessing_num_workers=16,
        ddp_timeout=180000000,
    )
    code, log = fmtkit(capsys, "train", path)
    assert code == 0, log
    assert log.count("ignoring LLaMA-Factory keys") == 1 and "preprocessing_num_workers" in log


# --- resume and export ----------------------------------------------------------------------


def test_resume_from_checkpoint(capsys, config):
    path, out = config(stage="sft", dataset="alpaca_sft", save_steps=1)
    code, log = fmtkit(capsys, "train", path)
    assert code == 0, log
    assert (out / "checkpoint-2").is_dir()
    code, log = fmtkit(capsys, "train", path, "max_steps=3", "resume_from_checkpoint=true")
    assert code == 0, log
    summary = summary_of(out)
    assert summary["global_step"] == 3 and summary["resumed_from"] == "True"
    assert [item["step"] for item in summary["losses"]] == [3]  # steps 1-2 came from the checkpoint
    # tokens: all seen since step 0; tokens/s: this session's only
    assert summary["tokens_per_second"] < summary["train_tokens"] / summary["train_runtime_s"]


def test_export_merges_the_adapter(capsys, config, tmp_path):
    import torch
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, out = config(stage="sft", dataset="sharegpt_sft", lora_target="q_proj,v_proj")
    assert fmtkit(capsys, "train", path)[0] == 0
    merged = tmp_path / "merged"
    code, log = fmtkit(capsys, "export", "--adapter", out, "-o", merged)
    assert code == 0, log
    assert (merged / "model.safetensors").is_file() and not (merged / "adapter_config.json").exists()
    assert not [p for p in tmp_path.iterdir() if ".fmtkit-" in p.name]  # written under a temporary name, then renamed

    model = AutoModelForCausalLM.from_pretrained(merged)
    tokenizer = AutoTokenizer.from_pretrained(merged)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hello"}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        generated = model.generate(**prompt, max_new_tokens=6, min_new_tokens=6, do_sample=False)
        assert generated.shape[1] == prompt["input_ids"].shape[1] + 6
        # merged weights compute what base + adapter computed
        adapted = AutoPeftModelForCausalLM.from_pretrained(out)
        assert torch.allclose(model(**prompt).logits, adapted(**prompt).logits, atol=1e-4)


def test_export_refuses_a_folder_without_an_adapter(capsys, tmp_path, tiny_model):
    code, log = fmtkit(capsys, "export", "--adapter", tiny_model, "-o", tmp_path / "x")
    assert code == 2 and "no LoRA adapter" in log


# --- the repository's own demo datasets -----------------------------------------------------


@pytest.mark.skipif(not (ROOT / "dataset" / "dataset_info.json").is_file(), reason="no dataset/ folder")
def test_demo_datasets_train(capsys, config):
    path, out = config(
        stage="sft", dataset_dir=str(ROOT / "dataset"), dataset="alpaca_demo,sharegpt_demo,openai_demo", max_steps=1
    )
    code, log = fmtkit(capsys, "train", path)
    assert code == 0, log
    summary_of(out)


# --- the command line itself -----------------------------------------------------------------


def test_train_help_does_not_import_the_training_stack():
    code = (
        "import sys; from fmtkit.cli import main\n"
        "try:\n    main(['train', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'datasets', 'peft') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "KEY=VALUE" in result.stdout and "--dry-run" in result.stdout


def test_fmtkit_runs_as_a_module_for_launchers():
    # `accelerate launch -m fmtkit train cfg.yaml` (trainer_plugin/__main__.py gave way to fmtkit/__main__.py)
    result = subprocess.run(
        [sys.executable, "-m", "fmtkit", "train", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "CONFIG_FILE" in result.stdout


def test_gpu_benchmark_smoke_check_on_the_cpu(tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_lora_sft", ROOT / "bench" / "gpu_lora_sft.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert (
        bench.main(["--tiny", "--steps", "3", "--output", str(tmp_path / "out"), "--json", str(tmp_path / "r.json")])
        == 0
    )
    results = json.loads((tmp_path / "r.json").read_text())
    assert results["tokens_per_second"] > 0 and results["measured_steps"] == 2
