"""The training config: LLaMA-Factory's YAML keys, as one typed dataclass.

``fmtkit train CONFIG.yaml [key=value ...]`` reads a flat YAML mapping with
LLaMA-Factory's key names into :class:`TrainConfig`; ``key=value`` overrides
win over the file. Every field carries its help text (``metadata["help"]``),
from which ``docs/training.md`` documents each key.

Keys outside :class:`TrainConfig` fall in three groups:

- :data:`IGNORED_KEYS`: LLaMA-Factory keys that have no use here
  (``do_train``, ``plot_loss``, ...). Accepted, and named once in the log.
- :data:`UNSUPPORTED_KEYS`: LLaMA-Factory features fmtkit does not implement
  (GaLore, QLoRA, ...). An error when they ask for the feature; accepted when
  they are off (``use_galore: false``).
- anything else: an error, with the closest known keys as suggestions.

>>> cfg, notes = load_config({"model_name_or_path": "m", "dataset": "a", "output_dir": "o"}, ["lora_rank=16"])
>>> (cfg.stage, cfg.lora_rank, cfg.resolved_lora_alpha)
('sft', 16, 32)
>>> load_config({"model_name_or_path": "m", "dataset": "a", "output_dir": "o", "lora_rnak": 4})
Traceback (most recent call last):
...
fmtkit.errors.FmtkitError: unknown config key 'lora_rnak' (did you mean lora_rank, lora_alpha?)
"""

from __future__ import annotations

import difflib
import math
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from fmtkit.errors import FmtkitError
from fmtkit.models.vision import is_vision_model
from fmtkit.templates import TEMPLATES
from trainer_plugin.fit import TRUNCATIONS

STAGES = ("pt", "sft", "rm", "dpo", "kto")
FINETUNING_TYPES = ("lora", "full")
PREF_LOSSES = ("sigmoid", "hinge", "ipo", "orpo", "simpo")
REQUIRED = ("model_name_or_path", "dataset", "output_dir")
# report_to's trackers -> the package each needs (the extra of the same name installs it).
TRACKERS = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow", "trackio": "trackio", "swanlab": "swanlab"}


def _key(default: Any, help: str, group: str, choices: tuple[str, ...] | None = None) -> Any:
    meta = {"help": help, "group": group}
    if choices:
        meta["choices"] = choices
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Everything ``fmtkit train`` needs, with LLaMA-Factory's names and defaults."""

    # model
    model_name_or_path: str = _key("", "Local folder (or hub id, with a hub cache) of the base model.", "model")
    template: str | None = _key(
        None,
        f"Chat template by LLaMA-Factory name ({', '.join(TEMPLATES)}) or a "
        "path to a .jinja file. It replaces the tokenizer's template and is saved with the output. Unset: the "
        "tokenizer's own template (which needs {% generation %} markers for assistant-only loss).",
        "model",
    )
    train_eot_newline: bool = _key(
        True,
        "Train the newline a template writes after each answer's end-of-turn token (`<|im_end|>\\n` in chatml, qwen, "
        "qwen3) with the answer, as LLaMA-Factory does. false: the newline opens the next turn and is never trained "
        "(as TRL's and the models' own templates mark it). fmtkit's named templates only.",
        "model",
    )
    enable_thinking: bool = _key(
        True,
        "qwen3: answers without a think block get an empty one, trained (true, LLaMA-Factory's default); false: "
        "thoughts are dropped and the empty block goes in the untrained prompt, and at inference the generation "
        "prompt pre-fills it. fmtkit's named templates only.",
        "model",
    )
    # method
    stage: str = _key(
        "sft", "Training stage. ORPO and SimPO are `stage: dpo` with `pref_loss: orpo|simpo`.", "method", STAGES
    )
    finetuning_type: str = _key("lora", "Train a LoRA adapter or all the weights.", "method", FINETUNING_TYPES)
    lora_rank: int = _key(8, "LoRA rank r.", "method")
    lora_alpha: int | None = _key(None, "LoRA alpha; unset means 2 x lora_rank.", "method")
    lora_dropout: float = _key(0.0, "Dropout on the LoRA branch.", "method")
    lora_target: str = _key(
        "all",
        "Modules that get LoRA: a comma list of module names (q_proj,v_proj) or `all` (every linear layer).",
        "method",
    )
    additional_target: str | None = _key(
        None, "Comma list of modules trained fully and saved beside the adapter (e.g. embed_tokens,lm_head).", "method"
    )
    use_rslora: bool = _key(False, "Rank-stabilised LoRA scaling (alpha / sqrt(r)).", "method")
    use_dora: bool = _key(False, "Weight-decomposed LoRA (DoRA).", "method")
    pref_beta: float = _key(0.1, "Beta of the preference losses (DPO, KTO, ORPO's lambda, SimPO).", "method")
    pref_loss: str = _key(
        "sigmoid", "Preference loss of `stage: dpo`; orpo and simpo switch to those trainers.", "method", PREF_LOSSES
    )
    pref_ftx: float = _key(
        0.0, "Weight of an added SFT (NLL) loss on the chosen (KTO: desirable) answers in DPO, SimPO, KTO and ORPO "
        "(orpo_sft_loss: answer), as LLaMA-Factory adds it.", "method"
    )
    pref_ftx_average: str = _key(
        "sample",
        "How pref_ftx's SFT term (dpo, simpo) averages the chosen answers' token NLL. sample: as LLaMA-Factory, each "
        "chosen answer's mean, averaged over the pairs (each pair weighs the same). token: as TRL (DPO's sft loss, "
        "CPO's), the mean over every chosen answer token of the batch (a long answer weighs more).",
        "method",
        ("sample", "token"),
    )
    orpo_sft_loss: str = _key(
        "answer",
        "ORPO's SFT term. answer: as LLaMA-Factory, minus each chosen answer's mean token log-probability, averaged "
        "over the pairs (the prompt is not trained). sequence: as TRL, the cross-entropy over every token of the "
        "chosen sequences, prompt included.",
        "method",
        ("answer", "sequence"),
    )
    simpo_gamma: float = _key(0.5, "Target reward margin of SimPO.", "method")
    dpo_label_smoothing: float = _key(
        0.0, "Label smoothing of the DPO sigmoid loss (robust DPO), in [0, 0.5].", "method"
    )
    kto_chosen_weight: float = _key(1.0, "KTO weight of desirable examples.", "method")
    kto_rejected_weight: float = _key(1.0, "KTO weight of undesirable examples.", "method")
    kto_kl_pairs: str | None = _key(
        None,
        "The mismatched (prompt, answer) pairs of KTO's KL term. llamafactory: each prompt gets the answer of the row "
        "before it in the data (in groups of preprocessing_batch_size rows, the first gets the group's last), the pair "
        "cut to cutoff_len as a sample is, and the rows shuffled, as LLaMA-Factory. trl: the answer of the row before "
        "it in its batch of per_device_train_batch_size, the pair's first cutoff_len tokens kept, the rows in data "
        "order (TRL's sequential sampler). Unset: as truncation (llamafactory needs truncation: llamafactory).",
        "method",
        ("llamafactory", "trl"),
    )
    # data
    dataset: str = _key("", "Comma list of entry names in dataset_info.json; mixed datasets are concatenated.", "data")
    eval_dataset: str | None = _key(None, "Comma list of entries used only for evaluation.", "data")
    dataset_dir: str = _key("data", "Folder holding dataset_info.json (LLaMA-Factory's default: data).", "data")
    cutoff_len: int = _key(
        2048, "Maximum tokens per example; longer ones are truncated (how: `truncation`).", "data"
    )
    truncation: str = _key(
        "llamafactory",
        "How an example longer than cutoff_len is cut. llamafactory: as LLaMA-Factory cuts it (prompt and answer "
        "share cutoff_len by their lengths, turn by turn; pairs by the longer answer; pt: packed blocks, the "
        "remainder dropped); fmtkit tokenizes and the trainer gets token ids. trl: as TRL's trainers cut it (the "
        "first cutoff_len tokens; rm drops longer pairs); examples left with nothing to train are dropped.",
        "data",
        tuple(TRUNCATIONS),
    )
    tokenized_path: str | None = _key(
        None,
        "Folder of the tokenized training set (truncation: llamafactory), as LLaMA-Factory's key: when it holds files, "
        "the set is loaded from it and the dataset keys are not read; else the set is tokenized and saved there.",
        "data",
    )
    preprocessing_batch_size: int = _key(
        1000,
        "truncation: llamafactory: rows processed together, as LLaMA-Factory's key and default: packed pt texts are "
        "concatenated per group before cutting blocks (the remainder of each group, shorter than a block, is dropped); "
        "sft_packing and kto_kl_pairs (llamafactory) pack and pair the rows within each group.",
        "data",
    )
    max_samples: int | None = _key(None, "Keep at most this many records of each dataset (the first ones).", "data")
    val_size: float = _key(
        0.0, "Split off an evaluation set: a fraction (0 < x < 1) or a record count (x > 1). 0: no split.", "data"
    )
    packing: bool | None = _key(
        None, "Pack several examples into each sequence; unset means on for pt, off otherwise.", "data"
    )
    sft_packing: str | None = _key(
        None,
        "How sft with packing packs the samples. llamafactory: LLaMA-Factory's greedy knapsack (per group of "
        "preprocessing_batch_size samples, the longest sample that fits first), each block padded to cutoff_len, "
        "positions restarting at each sample, which attends to the samples before it in its block unless neat_packing. "
        "trl: TRL's best-fit decreasing, each sample attending to itself only. Unset: as truncation (llamafactory "
        "needs truncation: llamafactory).",
        "data",
        ("llamafactory", "trl"),
    )
    neat_packing: bool = _key(
        False,
        "LLaMA-Factory's key: pack sft samples (it sets packing) so that each attends to itself only, not to the "
        "samples before it in its block. Stage sft only.",
        "data",
    )
    train_on_prompt: bool = _key(
        False, "Also train on prompt tokens. Off: SFT trains only on assistant turns (assistant-only loss).", "data"
    )
    default_system: str | None = _key(None, "System prompt for samples that have none.", "data")
    # training
    output_dir: str = _key("", "Where the adapter (or model), tokenizer, checkpoints, config and summary go.", "train")
    learning_rate: float = _key(5e-5, "Peak learning rate.", "train")
    num_train_epochs: float = _key(3.0, "Number of passes over the training data.", "train")
    max_steps: int = _key(-1, "Stop after this many optimizer steps (overrides num_train_epochs when > 0).", "train")
    per_device_train_batch_size: int = _key(8, "Examples per device per step (KTO needs at least 2).", "train")
    per_device_eval_batch_size: int = _key(8, "Examples per device per evaluation step.", "train")
    gradient_accumulation_steps: int = _key(1, "Steps whose gradients are summed before each update.", "train")
    lr_scheduler_type: str = _key("linear", "Learning-rate schedule (linear, cosine, constant, ...).", "train")
    warmup_ratio: float = _key(0.0, "Fraction of the steps spent warming the learning rate up.", "train")
    warmup_steps: int = _key(0, "Warm-up steps (wins over warmup_ratio when > 0).", "train")
    weight_decay: float = _key(0.0, "AdamW weight decay.", "train")
    max_grad_norm: float = _key(1.0, "Gradient clipping norm.", "train")
    optim: str = _key("adamw_torch", "Optimizer name, as transformers' TrainingArguments takes it.", "train")
    bf16: bool = _key(False, "bfloat16 mixed precision (turned off, with a note, on a CPU).", "train")
    fp16: bool = _key(False, "float16 mixed precision (turned off, with a note, on a CPU).", "train")
    disable_gradient_checkpointing: bool = _key(
        False, "Turn activation (gradient) checkpointing off. It is on on GPUs and always off on the CPU.", "train"
    )
    logging_steps: int = _key(10, "Print (and record, and report) the loss every this many steps.", "train")
    report_to: str = _key(
        "none",
        "Where the Trainer reports metrics: none, or a comma list of tensorboard, wandb, mlflow, trackio, swanlab (or "
        "all). Each needs its package (`pip install 'fmtkit[tensorboard]'`, ...; swanlab: `pip install swanlab`).",
        "train",
    )
    run_name: str | None = _key(None, "Name of the run in the trackers (unset: the tracker's default).", "train")
    logging_dir: str | None = _key(
        None, "TensorBoard's folder (unset: output_dir/runs/<date>_<host>, transformers' default).", "train"
    )
    plot_loss: bool = _key(
        False,
        "Save the loss curve as output_dir/training_loss.png (and training_eval_loss.png with evaluation), as "
        "LLaMA-Factory does. Needs matplotlib (`pip install 'fmtkit[plot]'`; without it, a warning and no plot).",
        "train",
    )
    save_strategy: str = _key(
        "steps", "When to save checkpoints: steps (every save_steps), epoch, or no.", "train", ("steps", "epoch", "no")
    )
    save_steps: int = _key(500, "Save a checkpoint every this many steps.", "train")
    save_total_limit: int | None = _key(None, "Keep at most this many checkpoints.", "train")
    eval_strategy: str = _key(
        "no",
        "When to evaluate: no, steps or epoch. With evaluation data and `no`, it evaluates once at the end.",
        "train",
        ("no", "steps", "epoch"),
    )
    eval_steps: int | None = _key(None, "Evaluate every this many steps (eval_strategy: steps).", "train")
    resume_from_checkpoint: str | None = _key(
        None, "A checkpoint folder to resume from, or `true` for the last checkpoint in output_dir.", "train"
    )
    seed: int = _key(42, "Random seed (data order, LoRA init, split).", "train")
    deepspeed: str | None = _key(
        None, "Path to a DeepSpeed JSON config (multi-GPU runs with accelerate launch).", "train"
    )
    ddp_find_unused_parameters: bool | None = _key(
        None,
        "DDP's find_unused_parameters. Unset: false with LoRA (as LLaMA-Factory sets it), transformers' default "
        "otherwise.",
        "train",
    )
    # vision-language models (trainer_plugin/vision.py): LLaMA-Factory's keys and defaults
    image_max_pixels: int = _key(768 * 768, "Images larger than this many pixels are scaled down (VLMs).", "data")
    image_min_pixels: int = _key(32 * 32, "Images smaller than this many pixels are scaled up (VLMs).", "data")
    freeze_vision_tower: bool = _key(True, "Keep the vision encoder of a VLM frozen (no LoRA on it).", "method")
    freeze_multi_modal_projector: bool = _key(
        True, "Keep the projector from vision to language frozen (no LoRA on it).", "method"
    )

    @property
    def resolved_lora_alpha(self) -> int:
        return self.lora_alpha if self.lora_alpha is not None else 2 * self.lora_rank

    @property
    def trainer_stage(self) -> str:
        """The stage module that runs: the config's stage, with dpo split into dpo, orpo and simpo."""
        if self.stage == "dpo" and self.pref_loss in ("orpo", "simpo"):
            return self.pref_loss
        return self.stage

    @property
    def dataset_names(self) -> list[str]:
        return split_names(self.dataset)

    @property
    def eval_dataset_names(self) -> list[str]:
        return split_names(self.eval_dataset)

    @property
    def trackers(self) -> list[str]:
        """``report_to`` as a list of trackers ([] for none; every one of :data:`TRACKERS` for all)."""
        names = split_names(self.report_to)
        if "all" in names:
            return list(TRACKERS)
        return [name for name in names if name != "none"]

    @property
    def use_packing(self) -> bool:
        return self.packing if self.packing is not None else self.stage == "pt"

    @property
    def resolved_kto_kl_pairs(self) -> str:
        """``kto_kl_pairs``, or the config's ``truncation`` when unset."""
        return self.kto_kl_pairs or self.truncation

    @property
    def resolved_sft_packing(self) -> str:
        """``sft_packing``, or the config's ``truncation`` when unset."""
        return self.sft_packing or self.truncation

    def to_yaml(self) -> str:
        """The resolved config, loadable again with :func:`load_config`."""
        return yaml.safe_dump(asdict(self), sort_keys=False, allow_unicode=True)


def split_names(value: str | None) -> list[str]:
    """``"a, b"`` -> ``["a", "b"]``."""
    return [name.strip() for name in (value or "").split(",") if name.strip()]


# LLaMA-Factory keys that change nothing here: accepted and named once in the log.
IGNORED_KEYS = frozenset(
    """
    do_train do_eval do_predict preprocessing_num_workers dataloader_num_workers
    dataloader_pin_memory dataloader_persistent_workers overwrite_output_dir save_only_model ddp_timeout
    ddp_backend logging_strategy logging_first_step
    trust_remote_code overwrite_cache cache_dir flash_attn use_fast_tokenizer low_cpu_mem_usage
    include_num_input_tokens_seen include_effective_tokens_per_second include_tokens_per_second
    compute_accuracy disable_tqdm log_level print_param_status hf_hub_token ms_hub_token om_hub_token media_dir
    eval_on_each_dataset predict_with_generate generation_max_length generation_num_beams do_sample temperature
    top_p top_k num_beams max_new_tokens max_length repetition_penalty length_penalty skip_special_tokens
    upcast_layernorm upcast_lmhead_output use_reentrant_gc
    video_max_pixels video_min_pixels video_fps video_maxlen audio_sampling_rate use_audio_in_video
    freeze_language_model moe_aux_loss_coef tf32
    save_safetensors ignore_pad_token_for_loss model_revision split_special_tokens infer_backend infer_dtype
    data_shared_file_system disable_shuffling buffer_size
    """.split()
)

# LLaMA-Factory's video and audio keys (ignored): on a vision-language model, named in a warning (images only here).
VIDEO_KEYS = ("video_max_pixels", "video_min_pixels", "video_fps", "video_maxlen", "audio_sampling_rate", "use_audio_in_video")

# LLaMA-Factory features fmtkit does not implement: an error when switched on.
UNSUPPORTED_KEYS: dict[str, str] = {
    **dict.fromkeys(("use_galore", "galore_target", "galore_rank", "galore_layerwise"), "GaLore"),
    **dict.fromkeys(("use_apollo", "apollo_target", "apollo_rank"), "APOLLO"),
    **dict.fromkeys(("use_badam", "badam_mode", "badam_switch_mode"), "BAdam"),
    **dict.fromkeys(("freeze_trainable_layers", "freeze_trainable_modules", "freeze_extra_modules"), "freeze tuning"),
    **dict.fromkeys(
        ("quantization_bit", "quantization_method", "quantization_type", "double_quantization"),
        "QLoRA (quantized base models)",
    ),
    **dict.fromkeys(
        (
            "ppo_epochs",
            "ppo_buffer_size",
            "ppo_score_norm",
            "ppo_target",
            "ppo_whiten_rewards",
            "reward_model",
            "reward_model_type",
            "reward_model_adapters",
        ),
        "PPO",
    ),
    **dict.fromkeys(("ref_model", "ref_model_adapters", "ref_model_quantization_bit"), "a separate reference model"),
    **dict.fromkeys(("pissa_init", "pissa_convert", "pissa_iter"), "PiSSA initialisation"),
    **dict.fromkeys(("loraplus_lr_ratio", "loraplus_lr_embedding"), "LoRA+"),
    **dict.fromkeys(("oft_rank", "oft_block_size", "oft_target"), "OFT"),
    **dict.fromkeys(("use_unsloth", "use_unsloth_gc"), "Unsloth"),
    **dict.fromkeys(("enable_liger_kernel", "use_liger_kernel"), "Liger kernels"),
    **dict.fromkeys(
        ("adapter_name_or_path", "create_new_adapter", "adapter_folder"), "training on top of an existing adapter"
    ),
    **dict.fromkeys(("mix_strategy", "interleave_probs"), "interleaved dataset mixing"),
    **dict.fromkeys(
        (
            "use_llama_pro",
            "use_adam_mini",
            "use_muon",
            "use_mca",
            "mixture_of_depths",
            "shift_attn",
            "rope_scaling",
            "train_from_scratch",
            "resize_vocab",
            "add_tokens",
            "add_special_tokens",
            "new_special_tokens_config",
            "mask_history",
            "streaming",
            "pure_bf16",
            "pref_bco_weight",
            "ld_alpha",
            "fsdp",
            "fsdp_config",
            "push_to_hub",
            "torch_compile",
            "use_kt",
        ),
        None,
    ),
}
# Values of unsupported keys that mean "off" besides null/false/0/empty (LLaMA-Factory's defaults).
_OFF_VALUES = {
    "mix_strategy": ("concat",),
    "freeze_trainable_layers": (2,),
    "freeze_trainable_modules": ("all",),
    "freeze_extra_modules": (None,),
    "galore_target": ("all",),
    "galore_rank": (16,),
    "apollo_target": ("all",),
    "apollo_rank": (16,),
    "badam_mode": ("layer",),
    "badam_switch_mode": ("ascending",),
    "quantization_method": ("bnb", "bitsandbytes"),
    "quantization_type": ("nf4",),
    "double_quantization": (True,),
    "pissa_iter": (16,),
    "ppo_epochs": (4,),
    "ppo_buffer_size": (1,),
    "ppo_target": (6.0,),
    "reward_model_type": ("lora",),
    "oft_rank": (0,),
    "oft_block_size": (32,),
    "oft_target": ("all",),
}
# Values that name an unsupported feature of a supported key.
_UNSUPPORTED_VALUES = {
    "stage": {"ppo": "PPO", "bco": "BCO"},
    "finetuning_type": {"freeze": "freeze tuning", "oft": "OFT"},
}
_FIELDS = {f.name: f for f in fields(TrainConfig)}
_HINTS = typing.get_type_hints(TrainConfig)


def known_keys() -> set[str]:
    return set(_FIELDS) | IGNORED_KEYS | set(UNSUPPORTED_KEYS)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A config file as a mapping (a clear error for anything else)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise FmtkitError(f"cannot read config {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise FmtkitError(f"{path} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    except yaml.YAMLError as exc:
        raise FmtkitError(f"{path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FmtkitError(f"{path} must be a YAML mapping of key: value, not a {type(data).__name__}")
    return data


def parse_overrides(overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["lora_rank=16", "bf16=false"]`` -> ``{"lora_rank": 16, "bf16": False}`` (values read as YAML).

    >>> parse_overrides(["max_steps=5", "dataset=a,b", "template=qwen3"])
    {'max_steps': 5, 'dataset': 'a,b', 'template': 'qwen3'}
    """
    out: dict[str, Any] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise FmtkitError(f"override {item!r} is not key=value")
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def load_config(data: dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> tuple[TrainConfig, list[str]]:
    """Build a :class:`TrainConfig` from a mapping plus ``key=value`` overrides.

    Returns the config and the notes to show once (ignored keys, adjustments).
    Raises :class:`FmtkitError` for unknown keys, unsupported features, bad values.
    """
    merged = {**data, **parse_overrides(overrides)}
    values: dict[str, Any] = {}
    ignored: list[str] = []
    for key, value in merged.items():
        key = str(key)
        if key in _FIELDS:
            values[key] = _coerce(key, value)
        elif key in UNSUPPORTED_KEYS:
            if not _is_off(key, value):
                feature = UNSUPPORTED_KEYS[key]
                what = f"{feature} ({key})" if feature else key
                raise FmtkitError(f"{what} is not supported by fmtkit train; remove `{key}` from the config")
            ignored.append(key)
        elif key in IGNORED_KEYS:
            ignored.append(key)
        else:
            # Suggest supported keys first: a typo of lora_rank should not point at galore_rank.
            close = difflib.get_close_matches(key, list(_FIELDS), n=2, cutoff=0.6)
            close = close or difflib.get_close_matches(key, sorted(known_keys()), n=2, cutoff=0.6)
            hint = f" (did you mean {', '.join(close)}?)" if close else " (see docs/training.md for every key)"
            raise FmtkitError(f"unknown config key {key!r}{hint}")
    config = TrainConfig(**values)
    notes = _check(config)
    video = [key for key in ignored if key in VIDEO_KEYS]
    if video and is_vision_model(config.model_name_or_path):
        ignored = [key for key in ignored if key not in video]
        notes.insert(0, f"warning: videos are not supported here: fmtkit train trains images only (samples with "
                     f"videos or audios are refused), so {', '.join(video)} change nothing")  # fmt: skip
    if ignored:
        notes.insert(0, f"ignoring LLaMA-Factory keys that fmtkit train has no use for: {', '.join(ignored)}")
    return config, notes


def _is_off(key: str, value: Any) -> bool:
    return value in (None, False, 0, "", [], {}) or value in _OFF_VALUES.get(key, ())


def _coerce(key: str, value: Any) -> Any:
    """Check and convert one value to its field's type ("1e-4" -> 1e-4, "true" -> True)."""
    f = _FIELDS[key]
    hint = _HINTS[key]
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None:
        if type(None) in args:
            return None
        raise FmtkitError(f"config key {key} needs a value")
    if key == "resume_from_checkpoint" and isinstance(value, bool):
        return "true" if value else None
    for typ in args:
        if typ is type(None):
            continue
        converted = _convert(value, typ)
        if converted is not _FAIL:
            choices = f.metadata.get("choices")
            if choices and converted not in choices:
                bad = _UNSUPPORTED_VALUES.get(key, {}).get(converted)
                if bad:
                    raise FmtkitError(f"{key}: {converted} ({bad}) is not supported by fmtkit train")
                raise _not_one_of(key, converted, choices)
            return converted
    names = " or ".join(t.__name__ for t in args if t is not type(None))
    raise FmtkitError(f"config key {key} must be {names}, got {value!r}")


_FAIL = object()


def _convert(value: Any, typ: type) -> Any:
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
            return value.lower() in ("true", "yes")
        return _FAIL
    if typ is int:
        if isinstance(value, bool):
            return _FAIL
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(float(value)) if float(value).is_integer() else _FAIL
            except ValueError:
                return _FAIL
        return _FAIL
    if typ is float:
        if isinstance(value, bool):
            return _FAIL
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):  # PyYAML reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                return _FAIL
        return _FAIL
    if typ is str:
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return ",".join(value)  # dataset: [a, b]
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        return _FAIL
    return _FAIL


def _check(config: TrainConfig) -> list[str]:
    """Cross-key checks; returns notes about values it adjusted."""
    notes: list[str] = []
    missing = [key for key in REQUIRED if not getattr(config, key)]
    if missing:
        raise FmtkitError(f"the config needs {', '.join(missing)}")
    for key in (
        "lora_rank",
        "per_device_train_batch_size",
        "per_device_eval_batch_size",
        "gradient_accumulation_steps",
        "cutoff_len",
        "logging_steps",
        "save_steps",
        "preprocessing_batch_size",
    ):
        if getattr(config, key) < 1:
            raise FmtkitError(f"{key} must be at least 1, got {getattr(config, key)}")
    if config.max_samples is not None and config.max_samples < 1:
        raise FmtkitError(f"max_samples must be at least 1, got {config.max_samples}")
    if not math.isfinite(config.val_size) or config.val_size < 0 or config.val_size == 1 or (config.val_size > 1 and not float(config.val_size).is_integer()):
        raise FmtkitError(
            f"val_size must be a fraction (0 < x < 1) or a whole record count (x > 1), got {config.val_size}"
        )
    _check_known_names(config)
    if config.pref_loss != "sigmoid" and config.stage != "dpo":
        notes.append(f"pref_loss {config.pref_loss} applies to stage dpo only; stage {config.stage} ignores it")
    if config.pref_ftx and config.trainer_stage == "orpo" and config.orpo_sft_loss == "sequence":
        notes.append("pref_ftx is not used by orpo with orpo_sft_loss: sequence (TRL's ORPO; LLaMA-Factory adds the SFT term again)")
    if config.stage == "kto" and config.per_device_train_batch_size < 2:
        # TRL's KTO needs two examples per batch for its KL term; keep the effective batch size.
        effective = config.per_device_train_batch_size * config.gradient_accumulation_steps
        config.per_device_train_batch_size = 2
        config.gradient_accumulation_steps = max(1, effective // 2)
        notes.append(
            "KTO needs per_device_train_batch_size >= 2 (its KL term): using 2 with gradient_accumulation_steps "
            f"{config.gradient_accumulation_steps} (effective batch {2 * config.gradient_accumulation_steps})"
        )
    if not config.dataset_names:
        raise FmtkitError("dataset names no dataset entry")
    for name in split_names(config.report_to):
        if name not in (*TRACKERS, "none", "all"):
            close = difflib.get_close_matches(name, list(TRACKERS), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise FmtkitError(f"report_to: {name!r} is not one of none, all, {', '.join(TRACKERS)}{hint}")
    if config.tokenized_path and config.truncation != "llamafactory":
        raise FmtkitError(
            "tokenized_path needs `truncation: llamafactory` (with truncation: trl the trainer tokenizes the set itself,"
            " so there is no tokenized set to save): remove tokenized_path or the truncation key"
        )
    if config.neat_packing:
        if config.stage != "sft":
            raise FmtkitError(f"neat_packing packs sft samples only (as in LLaMA-Factory), not stage {config.stage}: remove it")
        if config.packing is False:
            notes.append("neat_packing sets packing (as LLaMA-Factory does): packing: false is overridden")
        config.packing = True
    for key, applies in (("kto_kl_pairs", config.stage == "kto"), ("sft_packing", config.stage == "sft" and config.use_packing)):
        if applies and getattr(config, key) == "llamafactory" and config.truncation != "llamafactory":
            raise FmtkitError(
                f"{key}: llamafactory needs `truncation: llamafactory` (with truncation: trl the trainer tokenizes the "
                f"rows itself): remove {key}, or set it to trl"
            )
    if config.stage == "pt" and config.train_on_prompt:
        notes.append("train_on_prompt has no effect on stage pt (every token is trained)")
    return notes


def _check_known_names(config: TrainConfig) -> None:
    """``lr_scheduler_type`` and ``optim`` must be names transformers knows; ``deepspeed`` needs its package.

    Checked before any data is read, so ``--dry-run`` catches them too.
    """
    import importlib.util

    from transformers.trainer_utils import SchedulerType
    from transformers.training_args import OptimizerNames

    for key, names in (("lr_scheduler_type", SchedulerType), ("optim", OptimizerNames)):
        known = [n.value for n in names]
        if getattr(config, key) not in known:
            raise _not_one_of(key, getattr(config, key), known)
    if config.deepspeed and importlib.util.find_spec("deepspeed") is None:
        raise FmtkitError("deepspeed is set but the deepspeed package is not installed: pip install deepspeed, or remove the key")


def _not_one_of(key: str, value: Any, choices: list[str] | tuple[str, ...]) -> FmtkitError:
    close = difflib.get_close_matches(str(value), choices, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return FmtkitError(f"{key}: {value!r} is not one of {', '.join(choices)}{hint}")


def key_docs() -> list[tuple[str, str, str, str]]:
    """(group, key, default, help) for every supported key, in order: the docs' table."""
    rows = []
    for f in fields(TrainConfig):
        default = "" if f.default is MISSING else f.default
        shown = "(required)" if f.name in REQUIRED else ("unset" if default is None else repr(default))
        rows.append((f.metadata["group"], f.name, shown, f.metadata["help"]))
    return rows
