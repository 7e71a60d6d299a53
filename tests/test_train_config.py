"""The training config, the sample -> TRL row mapping and the docs: fast, no model, no torch."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fmtkit.errors import FmtkitError
from fmtkit.sample import Sample, ToolCall, Turn
from trainer_plugin import data
from trainer_plugin.config import IGNORED_KEYS, UNSUPPORTED_KEYS, TrainConfig, key_docs, load_config, parse_overrides
from trainer_plugin.stages import STAGE_MODULES

ROOT = Path(__file__).resolve().parents[1]
BASE = {"model_name_or_path": "m", "dataset": "a", "output_dir": "o"}

# The shape of LLaMA-Factory's Qwen3 LoRA examples (examples/train_lora/qwen3_lora_*.yaml): these
# must load unchanged, their LLaMA-Factory-only keys named as ignored.
LLAMAFACTORY_QWEN3 = """
### model
model_name_or_path: Qwen/Qwen3-4B-Instruct-2507
trust_remote_code: true

### method
stage: {stage}
do_train: true
finetuning_type: lora
lora_rank: 8
lora_target: all
{method}

### dataset
dataset: {dataset}
template: qwen3_nothink
cutoff_len: 2048
max_samples: 1000
overwrite_cache: true
preprocessing_num_workers: 16
dataloader_num_workers: 4

### output
output_dir: saves/qwen3-4b/lora/{stage}
logging_steps: 10
save_steps: 500
plot_loss: true
overwrite_output_dir: true
save_only_model: false
report_to: none  # choices: [none, wandb, tensorboard, swanlab, mlflow]

### train
per_device_train_batch_size: 1
gradient_accumulation_steps: 8
learning_rate: 1.0e-4
num_train_epochs: 3.0
lr_scheduler_type: cosine
warmup_ratio: 0.1
bf16: true
ddp_timeout: 180000000
resume_from_checkpoint: null

### eval
# eval_dataset: alpaca_en_demo
# val_size: 0.1
# per_device_eval_batch_size: 1
# eval_strategy: steps
# eval_steps: 500
"""
LLAMAFACTORY_CASES = {
    "sft": ("sft", "", "identity,alpaca_en_demo"),
    "dpo": ("dpo", "pref_beta: 0.1\npref_loss: sigmoid  # choices: [sigmoid (dpo), orpo, simpo]", "dpo_en_demo"),
    "orpo": ("dpo", "pref_beta: 0.1\npref_loss: orpo", "dpo_en_demo"),
    "simpo": ("dpo", "pref_beta: 0.1\npref_loss: simpo", "dpo_en_demo"),
    "kto": ("kto", "pref_beta: 0.1", "kto_en_demo"),
    "pt": ("pt", "", "c4_demo"),
    "rm": ("rm", "", "dpo_en_demo"),
}


def llamafactory_config(case: str) -> dict:
    stage, method, dataset = LLAMAFACTORY_CASES[case]
    return yaml.safe_load(LLAMAFACTORY_QWEN3.format(stage=stage, method=method, dataset=dataset))


@pytest.mark.parametrize("case", sorted(LLAMAFACTORY_CASES))
def test_llamafactory_qwen3_configs_load_unchanged(case):
    config, notes = load_config(llamafactory_config(case))
    assert config.trainer_stage == case
    assert config.learning_rate == pytest.approx(1e-4)
    assert config.template == "qwen3_nothink" and config.bf16 is True
    ignored = [n for n in notes if n.startswith("ignoring")]
    assert len(ignored) == 1  # named once
    for key in ("do_train", "trust_remote_code", "preprocessing_num_workers", "ddp_timeout"):
        assert key in ignored[0]
    assert (config.plot_loss, config.report_to, config.trackers) == (True, "none", [])  # honoured, not ignored


def test_kto_batch_of_one_is_raised_to_two_keeping_the_effective_batch():
    config, notes = load_config(llamafactory_config("kto"))
    assert (config.per_device_train_batch_size, config.gradient_accumulation_steps) == (2, 4)
    assert any("KTO needs" in n for n in notes)


def test_overrides_win_and_are_read_as_yaml():
    config, _ = load_config({**BASE, "lora_rank": 4, "bf16": True}, ["lora_rank=16", "bf16=false", "dataset=a,b"])
    assert (config.lora_rank, config.bf16, config.dataset_names) == (16, False, ["a", "b"])
    assert parse_overrides(["learning_rate=1e-4"]) == {"learning_rate": "1e-4"}  # PyYAML's quirk...
    config, _ = load_config(BASE, ["learning_rate=1e-4"])
    assert config.learning_rate == pytest.approx(1e-4)  # ...fixed by the typed field


def test_unknown_key_fails_with_a_suggestion():
    with pytest.raises(FmtkitError, match=r"unknown config key 'lora_rnak' \(did you mean lora_rank"):
        load_config({**BASE, "lora_rnak": 8})
    with pytest.raises(FmtkitError, match="did you mean learning_rate"):
        load_config(BASE, ["learnig_rate=1e-4"])
    with pytest.raises(FmtkitError, match="unknown config key 'zzz_qqq' \\(see docs/training.md"):
        load_config({**BASE, "zzz_qqq": 1})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("use_galore", True, "GaLore"),
        ("quantization_bit", 4, "QLoRA"),
        ("stage", "ppo", "PPO"),
        ("finetuning_type", "freeze", "freeze tuning"),
        ("ref_model", "other/model", "reference model"),
    ],
)
def test_unsupported_features_fail_saying_so(key, value, message):
    with pytest.raises(FmtkitError, match=f"{message}.*not supported"):
        load_config({**BASE, key: value})


def test_unsupported_keys_that_are_off_are_accepted():
    config, notes = load_config({**BASE, "use_galore": False, "mix_strategy": "concat", "quantization_bit": None})
    assert "use_galore" in notes[0] and "mix_strategy" in notes[0]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("lora_rank", "eight", "lora_rank must be int"),
        ("stage", "sftt", "did you mean sft"),
        ("pref_loss", "orpoo", "did you mean orpo"),
        ("val_size", 1, "val_size"),
        ("per_device_train_batch_size", 0, "at least 1"),
    ],
)
def test_bad_values_are_clear_errors(key, value, message):
    with pytest.raises(FmtkitError, match=message):
        load_config({**BASE, key: value})


def test_required_keys():
    with pytest.raises(FmtkitError, match="needs model_name_or_path, dataset, output_dir"):
        load_config({})


def test_defaults_follow_llamafactory():
    config, _ = load_config(BASE)
    assert (config.stage, config.finetuning_type, config.lora_rank, config.resolved_lora_alpha) == (
        "sft",
        "lora",
        8,
        16,
    )
    assert (config.dataset_dir, config.cutoff_len, config.pref_beta, config.pref_loss, config.seed) == (
        "data",
        2048,
        0.1,
        "sigmoid",
        42,
    )
    assert config.use_packing is False
    assert load_config({**BASE, "stage": "pt"})[0].use_packing is True


def test_resolved_config_round_trips():
    config, _ = load_config({**BASE, "stage": "dpo", "pref_loss": "simpo", "resume_from_checkpoint": True})
    again, notes = load_config(yaml.safe_load(config.to_yaml()))
    assert again == config and notes == []


def test_key_groups_do_not_overlap():
    fields = {row[1] for row in key_docs()}
    assert not fields & IGNORED_KEYS and not fields & set(UNSUPPORTED_KEYS) and not IGNORED_KEYS & set(UNSUPPORTED_KEYS)


def test_docs_describe_every_key_and_stage():
    docs = (ROOT / "docs" / "training.md").read_text(encoding="utf-8")
    for key in [row[1] for row in key_docs()] + sorted(IGNORED_KEYS) + sorted(UNSUPPORTED_KEYS):
        assert f"`{key}`" in docs, key
    for stage in STAGE_MODULES:
        assert stage in docs
    assert "accelerate launch" in docs


def test_config_fields_all_have_help():
    for group, key, _, help_text in key_docs():
        assert group in ("model", "method", "data", "train") and help_text.endswith("."), key
    assert len(key_docs()) == len(TrainConfig.__dataclass_fields__)


# --- samples -> TRL rows -------------------------------------------------------------------


def test_sft_row_with_tools_system_first_and_openai_tool_calls():
    sample = Sample(
        system="Use tools.",
        tools=[{"name": "get_weather", "parameters": {"type": "object"}}],
        turns=[
            Turn("user", "Weather in Paris?"),
            Turn("assistant", tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="c1")]),
            Turn("tool", "sunny", tool_call_id="c1"),
            Turn("assistant", "Sunny."),
        ],
        extra={"id": 7, "source": "x"},
    )
    row = data.sft_row(sample)
    assert set(row) == {"messages", "tools", "chat_template_kwargs"}  # extra fields dropped
    assert row["chat_template_kwargs"] == {"think_in_history": True}  # every answer of an SFT conversation is trained
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    call = row["messages"][2]["tool_calls"][0]
    assert call == {
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        "id": "c1",
    }
    assert row["tools"] == '[{"name": "get_weather", "parameters": {"type": "object"}}]'


def test_default_system_only_fills_a_missing_system():
    with_system = Sample(system="Mine.", turns=[Turn("user", "a"), Turn("assistant", "b")])
    without = Sample(turns=[Turn("user", "a"), Turn("assistant", "b")])
    assert data.sft_row(with_system, "Default.")["messages"][0]["content"] == "Mine."
    assert data.sft_row(without, "Default.")["messages"][0] == {"role": "system", "content": "Default."}


def test_preference_and_kto_rows():
    pref = Sample(
        system="S", turns=[Turn("user", "q")], chosen=Turn("assistant", "good"), rejected=Turn("assistant", "bad")
    )
    row = data.preference_row(pref)
    assert row["prompt"] == [{"role": "system", "content": "S"}, {"role": "user", "content": "q"}]
    assert row["chosen"] == [{"role": "assistant", "content": "good"}]
    assert row["rejected"] == [{"role": "assistant", "content": "bad"}]
    kto = Sample(turns=[Turn("user", "q"), Turn("assistant", "a")], label=True)
    assert data.kto_row(kto) == {
        "prompt": [{"role": "user", "content": "q"}],
        "completion": [{"role": "assistant", "content": "a"}],
        "label": True,
    }


def test_a_sample_of_the_wrong_kind_names_entry_and_record():
    samples = [Sample(text="hello"), Sample(turns=[Turn("user", "q"), Turn("assistant", "a")])]
    with pytest.raises(data.SampleKindError, match="dataset demo, record 0: a pretrain sample cannot train stage sft"):
        data.rows_for(samples, data.sft_row, "demo")
    with pytest.raises(data.SampleKindError, match="images"):
        data.sft_row(Sample(turns=[Turn("user", "<image>q"), Turn("assistant", "a")], images=["a.png"]))


@pytest.mark.parametrize("module", ["config", "data", "gate", "stages"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"trainer_plugin.{module}"))
    assert result.failed == 0


def test_take_truncates_each_dataset():
    assert [s.text for s in data.take(iter(Sample(text=str(i)) for i in range(10)), 3)] == ["0", "1", "2"]
    assert len(data.take([Sample(text="a")] * 4, None)) == 4


# --- what each stage hands TRL ---------------------------------------------------------------------
# TRL and peft are replaced by recorders (no torch), so these pin the exact keyword arguments each
# stage's ``build`` passes to its TRL ``*Config``, its trainer and peft's ``LoraConfig``.

PINNED_KEYS = {
    **BASE,
    "stage": "dpo",
    "lora_rank": 4,
    "lora_target": "q_proj, v_proj",
    "additional_target": "score",
    "lora_dropout": 0.05,
    "use_rslora": True,
    "pref_beta": 0.2,
    "pref_ftx": 0.5,
    "simpo_gamma": 0.7,
    "dpo_label_smoothing": 0.1,
    "kto_chosen_weight": 1.5,
    "kto_rejected_weight": 0.5,
    "cutoff_len": 512,
    "learning_rate": 1e-4,
    "num_train_epochs": 2.0,
    "max_steps": 30,
    "per_device_train_batch_size": 2,
    "per_device_eval_batch_size": 4,
    "gradient_accumulation_steps": 3,
    "lr_scheduler_type": "cosine",
    "warmup_ratio": 0.1,
    "weight_decay": 0.01,
    "max_grad_norm": 0.5,
    "logging_steps": 5,
    "save_steps": 10,
    "save_total_limit": 2,
    "eval_strategy": "steps",
    "eval_steps": 10,
    "seed": 7,
    "train_on_prompt": False,
}

PINNED_COMMON = {
    "output_dir": "o",
    "learning_rate": 1e-4,
    "num_train_epochs": 2.0,
    "max_steps": 30,
    "per_device_train_batch_size": 2,
    "per_device_eval_batch_size": 4,
    "gradient_accumulation_steps": 3,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 0.1,
    "weight_decay": 0.01,
    "max_grad_norm": 0.5,
    "optim": "adamw_torch",
    "bf16": True,
    "fp16": False,
    "use_cpu": False,
    "activation_checkpointing": True,
    "logging_steps": 5,
    "save_strategy": "steps",
    "save_steps": 10,
    "save_total_limit": 2,
    "eval_strategy": "steps",
    "eval_steps": 10,
    "seed": 7,
    "deepspeed": None,
    "ddp_find_unused_parameters": False,  # LoRA under DDP: LLaMA-Factory's setting
    "max_length": 512,
    "model_init_kwargs": {"dtype": "bfloat16"},
    "report_to": "none",
    "run_name": None,
    "logging_nan_inf_filter": False,
    "disable_tqdm": True,
    "dataloader_pin_memory": True,
}

COUNTED = {"include_num_input_tokens_seen": "non_padding"}
UNCOUNTED = {"include_num_input_tokens_seen": "no"}

# stage -> (TRL config class, trainer class, peft task type, config kwargs beyond PINNED_COMMON)
PINNED_STAGES = {
    "sft": (
        "SFTConfig",
        "SFTTrainer",
        "CAUSAL_LM",
        {**COUNTED, "assistant_only_loss": True, "packing": False, "packing_strategy": "bfd"},
    ),
    "pt": (
        "SFTConfig",
        "SFTTrainer",
        "CAUSAL_LM",
        {**COUNTED, "assistant_only_loss": False, "packing": False, "packing_strategy": "wrapped"},
    ),
    "dpo": (
        "DPOConfig",
        "DPOTrainer",
        "CAUSAL_LM",
        # pref_ftx's SFT term is added per pair (pref_ftx_average: sample), not as TRL's "sft" loss type
        {**COUNTED, "beta": 0.2, "loss_type": ["sigmoid"], "loss_weights": None, "label_smoothing": 0.1},
    ),
    "orpo": ("ORPOConfig", "ORPOTrainer", "CAUSAL_LM", {**UNCOUNTED, "beta": 0.2, "remove_unused_columns": False}),
    "simpo": (
        "CPOConfig",
        "CPOTrainer",
        "CAUSAL_LM",
        {
            **UNCOUNTED,
            "loss_type": "simpo",
            "beta": 0.2,
            "simpo_gamma": 0.7,
            "cpo_alpha": 0.5,
            "remove_unused_columns": False,
        },
    ),
    "kto": (
        "KTOConfig",
        "KTOTrainer",
        "CAUSAL_LM",
        {**COUNTED, "beta": 0.2, "desirable_weight": 1.5, "undesirable_weight": 0.5},
    ),
    "rm": ("RewardConfig", "RewardTrainer", "SEQ_CLS", {**COUNTED}),
}


@pytest.fixture
def recorded_trl(monkeypatch):
    """Fake ``trl`` and ``peft`` modules whose classes return ``(class name, keyword arguments)``."""
    import sys
    import types

    def recorder(name):  # a class (stages may subclass a trainer) that "constructs" (name, kwargs)
        return type(name, (), {"__new__": lambda cls, **kwargs: (name, kwargs)})

    names = {
        "trl": [
            *("SFTConfig", "SFTTrainer", "DPOConfig", "DPOTrainer"),
            *("KTOConfig", "KTOTrainer", "RewardConfig", "RewardTrainer"),
        ],
        "trl.experimental": [],
        "trl.experimental.orpo": ["ORPOConfig", "ORPOTrainer"],
        "trl.experimental.cpo": ["CPOConfig", "CPOTrainer"],
        "peft": ["LoraConfig"],
    }
    for module_name, classes in names.items():
        module = types.ModuleType(module_name)
        for cls in classes:
            setattr(module, cls, recorder(cls))
        monkeypatch.setitem(sys.modules, module_name, module)
    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")


def _built(stage_name, keys, *, bf16=True, eval_dataset="EVAL"):
    from trainer_plugin.stages import StageContext, get_stage

    config, _ = load_config(keys)
    ctx = StageContext(
        config,
        "TOKENIZER",
        "TRAIN",
        eval_dataset,
        use_cpu=False,
        bf16=bf16,
        fp16=False,
        activation_checkpointing=True,
        callbacks=["CALLBACK"],
    )
    return get_stage(stage_name).build(ctx)


@pytest.mark.parametrize("stage_name", sorted(PINNED_STAGES))
def test_each_stage_hands_trl_the_pinned_config(recorded_trl, stage_name):
    config_class, trainer_class, task_type, extra = PINNED_STAGES[stage_name]
    name, trainer_kwargs = _built(stage_name, PINNED_KEYS)
    assert name == trainer_class
    args = trainer_kwargs.pop("args")
    assert args == (config_class, {**PINNED_COMMON, **extra})
    lora = (
        "LoraConfig",
        {
            "r": 4,
            "lora_alpha": 8,
            "lora_dropout": 0.05,
            "target_modules": ["q_proj", "v_proj"],
            "modules_to_save": ["score"],
            "use_rslora": True,
            "use_dora": False,
            "task_type": task_type,
        },
    )
    assert trainer_kwargs == {
        "model": "m",
        "train_dataset": "TRAIN",
        "eval_dataset": "EVAL",
        "processing_class": "TOKENIZER",
        "peft_config": lora,
        "callbacks": ["CALLBACK"],
    }


@pytest.mark.parametrize("stage_name", sorted(PINNED_STAGES))
def test_each_stage_full_finetuning_without_eval(recorded_trl, stage_name):
    keys = {**PINNED_KEYS, "finetuning_type": "full", "pref_ftx": 0.0, "train_on_prompt": True, "warmup_steps": 4}
    _, trainer_kwargs = _built(stage_name, keys, eval_dataset=None)
    _, args = trainer_kwargs["args"]
    assert trainer_kwargs["peft_config"] is None and trainer_kwargs["eval_dataset"] is None
    assert (args["eval_strategy"], args["warmup_steps"], args["model_init_kwargs"]) == ("no", 4, {"dtype": "float32"})
    assert args["ddp_find_unused_parameters"] is None  # full fine-tuning: transformers decides
    if stage_name == "dpo":
        assert (args["loss_type"], args["loss_weights"]) == (["sigmoid"], None)
    if stage_name == "simpo":
        assert args["cpo_alpha"] == 0.0
    if stage_name == "sft":
        assert args["assistant_only_loss"] is False
