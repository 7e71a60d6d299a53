"""Load a causal language model and its tokenizer, with a LoRA (peft) adapter on top when asked.

``MODEL`` is a folder or a hub id (already downloaded: see ``fmtkit
download``). With an adapter alone, its base model is the one its
``adapter_config.json`` names; a ``MODEL`` folder that holds an adapter is
taken as ``--adapter`` too::

    loaded = load_model("models/Qwen3-0.6B", adapter="outputs/sft-lora")
    loaded.model, loaded.tokenizer, loaded.device

A vision-language model folder (:func:`fmtkit.models.vision.is_vision_model`)
loads with its processor too (``loaded.processor``), so prompts can hold images.

torch, transformers and peft are imported inside the functions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmtkit.errors import EXIT_USAGE, FmtkitError, first_line
from fmtkit.models.vision import is_vision_model, load_processor, set_image_pixels
from fmtkit.stats.tokenizer import has_tokenizer_files, no_tokenizer_message

ADAPTER_CONFIG = "adapter_config.json"
DTYPES = ("auto", "float32", "bfloat16", "float16")
STACK_HINT = "install the model stack: pip install torch==2.13.0 && pip install 'fmtkit[train]'"


@dataclass
class LoadedModel:
    """A model ready to generate: ``model`` (in eval mode), ``tokenizer`` (left padding), and where they came from."""

    model: Any
    tokenizer: Any
    base: str
    adapter: Path | None
    device: str
    processor: Any = None  # a vision-language model's processor (fmtkit.models.vision); None for a text model

    @property
    def name(self) -> str:
        """What to call the model in messages: the base, and the adapter when there is one."""
        return f"{self.base} + {self.adapter}" if self.adapter else self.base


def resolve_model(model: str | None, adapter: str | Path | None) -> tuple[str, Path | None]:
    """The base model and the adapter folder that ``MODEL`` and ``--adapter`` mean.

    >>> resolve_model("Qwen/Qwen3-0.6B", None)
    ('Qwen/Qwen3-0.6B', None)
    """
    if adapter is None and model is not None and _is_adapter(Path(model)):
        model, adapter = None, model
    if adapter is None:
        if model is None:
            raise FmtkitError("give a MODEL (folder or hub id), or --adapter DIR", EXIT_USAGE)
        return model, None
    folder = Path(adapter).expanduser()
    if not _is_adapter(folder):
        what = "no such folder" if not folder.is_dir() else f"no {ADAPTER_CONFIG} in it"
        raise FmtkitError(f"--adapter {folder}: {what} (expected a LoRA adapter saved by peft)", EXIT_USAGE)
    if model is not None:
        return model, folder
    try:
        config = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FmtkitError(f"{folder / ADAPTER_CONFIG}: cannot read it ({exc})", EXIT_USAGE) from None
    base = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    if not base:
        raise FmtkitError(f"{folder / ADAPTER_CONFIG} names no base model: give MODEL too", EXIT_USAGE)
    # A base saved as a relative path is relative to where training ran, often the adapter's parent.
    if not Path(base).expanduser().exists() and (folder / base).exists():
        base = str(folder / base)
    return base, folder


def _is_adapter(folder: Path) -> bool:
    return (folder / ADAPTER_CONFIG).is_file()


def pick_device(device: str | None = None) -> str:
    """``device`` if given, else ``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    if device:
        try:
            torch.device(device)
        except (RuntimeError, ValueError):
            raise FmtkitError(f"--device {device!r} is not a device: use cpu, cuda, cuda:1, mps...", EXIT_USAGE) from None
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(
    model: str | None,
    adapter: str | Path | None = None,
    *,
    dtype: str = "auto",
    device: str | None = None,
    trust_remote_code: bool = False,
) -> LoadedModel:
    """Load the base model (and the adapter on top) for generation.

    ``dtype="auto"`` keeps the checkpoint's own dtype. On CUDA the weights are
    placed with ``device_map="auto"`` (across GPUs, spilling to CPU if needed);
    elsewhere the model goes to ``device`` (default ``cpu``). The tokenizer
    comes from the adapter folder when training saved one there (its chat
    template may differ from the base's), else from the base.
    """
    if dtype not in DTYPES:
        raise FmtkitError(f"unknown dtype {dtype!r}: choose one of {', '.join(DTYPES)}", EXIT_USAGE)
    base, adapter_dir = resolve_model(model, adapter)
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise FmtkitError(f"loading a model needs {exc.name}: {STACK_HINT}", EXIT_USAGE) from None

    device = pick_device(device)
    kwargs: dict[str, Any] = {"dtype": dtype if dtype == "auto" else getattr(torch, dtype)}
    if trust_remote_code:
        kwargs["trust_remote_code"] = True
    placed = device == "cuda" and _has_accelerate()
    if placed:
        kwargs["device_map"] = "auto"
    tokenizer_source = str(adapter_dir) if adapter_dir and has_tokenizer_files(adapter_dir) else base
    missing = no_tokenizer_message(tokenizer_source)
    if missing is not None:
        raise FmtkitError(missing, EXIT_USAGE)
    processor = None
    try:
        if is_vision_model(base):
            from transformers import AutoModelForImageTextToText

            processor = load_processor(base, tokenizer_source)
            set_image_pixels(processor, None, None)  # as fmtkit train sizes images by default
            tokenizer = processor.tokenizer
            lm = AutoModelForImageTextToText.from_pretrained(base, **kwargs)
        else:
            tokenizer = AutoTokenizer.from_pretrained(tokenizer_source, trust_remote_code=trust_remote_code)
            lm = AutoModelForCausalLM.from_pretrained(base, **kwargs)
    except FmtkitError as exc:
        raise FmtkitError(str(exc), EXIT_USAGE) from None
    except Exception as exc:  # noqa: BLE001 - whatever transformers raises for a folder that is not a model
        raise FmtkitError(_not_loadable(base, exc), EXIT_USAGE) from None
    if not placed:
        try:
            lm.to(device)
        except (RuntimeError, AssertionError) as exc:  # "Torch not compiled with CUDA enabled", no such GPU
            raise FmtkitError(f"cannot use --device {device}: {first_line(exc)}", EXIT_USAGE) from None
    if adapter_dir is not None:
        try:
            from peft import PeftModel
        except ImportError:
            raise FmtkitError(f"loading an adapter needs peft: {STACK_HINT}", EXIT_USAGE) from None
        try:
            lm = PeftModel.from_pretrained(lm, str(adapter_dir))
        except Exception as exc:  # noqa: BLE001 - missing weights, a malformed config, a base of another shape
            raise FmtkitError(f"cannot put the adapter {adapter_dir} on {base}: {first_line(exc)}", EXIT_USAGE) from None
    lm.eval()
    # Decoder-only models continue the last token of each row: pad on the left.
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    device_name = str(_device_of(lm, device))
    return LoadedModel(model=lm, tokenizer=tokenizer, base=base, adapter=adapter_dir, device=device_name, processor=processor)


def _has_accelerate() -> bool:
    import importlib.util

    return importlib.util.find_spec("accelerate") is not None


def _device_of(model: Any, fallback: str) -> Any:
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return fallback


def _not_loadable(base: str, exc: BaseException) -> str:
    if Path(base).expanduser().exists():
        return f"cannot load the model in {base}: {first_line(exc)}"
    if _looks_like_path(base):
        return f"no model folder {base}"
    return (
        f"no model {base!r}: not a folder here, and not in the hub cache. "
        f"Download it first (fmtkit download {base}), or give the folder it is in"
    )


def _looks_like_path(name: str) -> bool:
    """True for what can only be a path; hub ids are ``name`` or ``owner/name``.

    >>> _looks_like_path("Qwen/Qwen3-0.6B"), _looks_like_path("./models/qwen"), _looks_like_path("a/b/c")
    (False, True, True)
    """
    return name.startswith((".", "/", "~", "\\")) or name.count("/") > 1 or "\\" in name or ":" in name
