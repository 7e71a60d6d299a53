"""Merge a LoRA adapter into its base model and save a standalone model.

The base model comes from the adapter's ``adapter_config.json``
(``base_model_name_or_path``) unless given; the tokenizer is the adapter's
(with the chat template used in training) when saved there, else the base's.
Reward-model adapters (task type ``SEQ_CLS``) merge into a sequence classifier.

Example (tests/test_train_cli.py runs it on a tiny model)::

    export_adapter("out/lora", "out/merged")   # -> Path("out/merged")
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from fmtkit.errors import FmtkitError, first_line

DTYPES = ("auto", "float32", "bfloat16", "float16")


def read_adapter_config(adapter: Path) -> dict:
    """The adapter's ``adapter_config.json`` (a clear error when the folder holds no LoRA adapter)."""
    config_file = adapter / "adapter_config.json"
    if not config_file.is_file():
        raise FmtkitError(f"{adapter} holds no LoRA adapter (no adapter_config.json); full fine-tuning needs no export")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FmtkitError(f"{config_file} is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise FmtkitError(f"{config_file} must hold a JSON object (the adapter's settings)")
    if not any((adapter / name).is_file() for name in ("adapter_model.safetensors", "adapter_model.bin")):
        raise FmtkitError(f"{adapter} has no adapter weights (adapter_model.safetensors): copy them there, or train again")
    return config


def export_adapter(
    adapter: str | Path,
    output: str | Path,
    base: str | None = None,
    dtype: str = "auto",
    echo: Callable[[str], None] = print,
) -> Path:
    """Merge ``adapter`` into its base model and save model + tokenizer to ``output``; return ``output``."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    adapter, output = Path(adapter), Path(output)
    adapter_config = read_adapter_config(adapter)
    base = base or adapter_config.get("base_model_name_or_path")
    if not base:
        raise FmtkitError(f"{adapter}/adapter_config.json names no base model: give it with --base")
    if output.resolve() == adapter.resolve():
        raise FmtkitError("the output folder must differ from the adapter folder")
    if Path(base).is_dir():
        from fmtkit.writing import refuse_model_folder

        refuse_model_folder(output, "-o", {"the base model": base})
    auto_class = (
        AutoModelForSequenceClassification if adapter_config.get("task_type") == "SEQ_CLS" else AutoModelForCausalLM
    )
    kwargs = {"dtype": dtype if dtype == "auto" else getattr(torch, dtype)}
    if auto_class is AutoModelForSequenceClassification:
        kwargs["num_labels"] = 1
    echo(f"loading base model {base}")
    try:
        model = auto_class.from_pretrained(base, **kwargs)
    except Exception as exc:  # noqa: BLE001 - whatever transformers raises for what is not a model
        raise FmtkitError(f"cannot load the base model {base!r}: {first_line(exc)}") from None
    echo(f"merging adapter {adapter}")
    has_tokenizer = any((adapter / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json"))
    try:
        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
        tokenizer = AutoTokenizer.from_pretrained(str(adapter) if has_tokenizer else base)
    except Exception as exc:  # noqa: BLE001 - missing adapter weights, a malformed config, no tokenizer
        raise FmtkitError(f"cannot merge the adapter {adapter} into {base}: {first_line(exc)}") from None
    from fmtkit.writing import atomic_folder

    with atomic_folder(output) as folder:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    echo(f"saved the merged model and tokenizer to {output}")
    return output
