"""Training vision-language models on image samples, through TRL's own VLM support.

When ``model_name_or_path`` is a vision-language model
(:func:`fmtkit.models.vision.is_vision_model`), stages ``sft`` and ``dpo``
train samples with images: the data gate has already checked them (media
exist, inside the dataset folder, one ``<image>`` per image), then

- :func:`vision_row` maps each sample to TRL's image forms: messages whose
  content is a list of blocks, ``{"type": "image"}`` where each ``<image>``
  was, plus an ``images`` column (the files, read as images by ``datasets``);
- :func:`load_vision_processor` loads the model's processor in place of the
  tokenizer, with LLaMA-Factory's ``image_max_pixels`` / ``image_min_pixels``;
- :func:`check_vision_data` measures every row as TRL's collator will
  tokenize it, image tokens included, and drops the rows that cannot train
  (no trained token, or an image cut by ``cutoff_len``, which TRL cannot feed);
- :func:`lora_targets` and :func:`freeze_vision_parts` apply
  ``freeze_vision_tower`` / ``freeze_multi_modal_projector`` as LLaMA-Factory
  does for the families in :data:`VISION_PARTS`.

A text model given image samples is refused with a clear message
(:func:`text_model_media_error`). Videos and audios are not trained.

>>> from fmtkit.sample import Sample, Turn
>>> s = Sample(turns=[Turn("user", "<image>What is it?"), Turn("assistant", "A cat.")], images=["cat.png"])
>>> row = vision_row(s, "sft", None, "/data")
>>> row["messages"][0]["content"], row["images"]
([{'type': 'image', 'text': None}, {'type': 'text', 'text': 'What is it?'}], ['/data/cat.png'])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmtkit.errors import EXIT_FINDINGS, FmtkitError
from fmtkit.models.vision import content_blocks, is_vision_model
from fmtkit.sample import PLACEHOLDERS, Sample, Turn
from trainer_plugin.data import Row, SampleKindError, message

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

    from trainer_plugin.config import TrainConfig

VISION_STAGES = ("sft", "dpo")  # TRL trainers that take images (DPO: the sigmoid, hinge and ipo losses)


@dataclass(frozen=True)
class VisionParts:
    """Module-name parts of a VLM family: its vision tower, its projector, and modules LoRA must not wrap."""

    tower: tuple[str, ...]
    projector: tuple[str, ...]
    lora_conflicts: tuple[str, ...] = ()


# As LLaMA-Factory names them for these families; the ones checked here (tests/tiny_model.py builds a Qwen2-VL).
VISION_PARTS = {
    "qwen2_vl": VisionParts(tower=("visual.patch_embed", "visual.blocks"), projector=("visual.merger",), lora_conflicts=("patch_embed",)),
    "qwen2_5_vl": VisionParts(tower=("visual.patch_embed", "visual.blocks"), projector=("visual.merger",), lora_conflicts=("patch_embed",)),
}  # fmt: skip
# Other families: the usual transformers names (LLaVA, Gemma 3...).
DEFAULT_PARTS = VisionParts(tower=("vision_tower",), projector=("multi_modal_projector",))


def text_model_media_error(model: str) -> str:
    return (
        f"samples with images, videos or audios need a vision-language model, and {model} is a text model"
        " (its config.json has no vision_config): train them on a VLM such as Qwen2-VL, or remove the media"
    )


def _blocks(text: str) -> list[dict[str, Any]]:
    # Every block has both keys, so that Arrow stores one struct type for all of them.
    return [{"type": b["type"], "text": b.get("text")} for b in content_blocks(text)]


def _vision_message(turn: Turn) -> dict[str, Any]:
    out = message(turn)
    out["content"] = _blocks(turn.content or "")
    return out


def vision_row(sample: Sample, stage: str, default_system: str | None, dataset_dir: str | Path) -> Row:
    """A sample with images as a TRL row of stage ``sft`` (``messages``) or ``dpo`` (``prompt`` / ``chosen`` / ``rejected``),
    plus ``images``: the files, relative paths resolved against ``dataset_dir`` as LLaMA-Factory resolves them."""
    if sample.videos or sample.audios:
        raise SampleKindError("fmtkit train trains images only: samples with videos or audios cannot be trained")
    if sample.tools:
        raise SampleKindError("samples with both images and tools cannot be trained by fmtkit train")
    placeholders = sum((t.content or "").count(PLACEHOLDERS["images"]) for t in sample.turns)
    if placeholders != len(sample.images):
        raise SampleKindError(f"{len(sample.images)} image(s) for {placeholders} <image> placeholder(s)")
    system = sample.system or default_system or ""
    head = [{"role": "system", "content": _blocks(system)}] if system else []
    prompt = head + [_vision_message(turn) for turn in sample.prompt_turns]
    images = [str(Path(dataset_dir) / path) for path in sample.images]
    if stage == "sft":
        if sample.kind != "sft":
            raise SampleKindError(f"a {sample.kind} sample cannot train stage sft")
        return {"messages": prompt + [_vision_message(sample.turns[-1])], "images": images}
    if sample.kind != "preference" or sample.chosen is None or sample.rejected is None:
        raise SampleKindError(f"a {sample.kind} sample cannot train stage {stage} (it needs chosen and rejected answers)")
    return {
        "prompt": prompt,
        "chosen": [_vision_message(sample.chosen)],
        "rejected": [_vision_message(sample.rejected)],
        "images": images,
    }


def row_function(config: TrainConfig, stage: Any) -> Callable[[Sample, str | None], Row]:
    """The row function of the run: the stage's own for a text model (media refused with a clear message),
    :func:`vision_row` for a VLM on a stage that takes images."""
    if not is_vision_model(config.model_name_or_path):

        def text_row(sample: Sample, default_system: str | None) -> Row:
            if sample.images or sample.videos or sample.audios:
                raise SampleKindError(text_model_media_error(config.model_name_or_path))
            return stage.to_row(sample, default_system)

        return text_row
    if stage.name not in VISION_STAGES:
        raise FmtkitError(
            f"{config.model_name_or_path} is a vision-language model: fmtkit train trains it with stage "
            f"{' or '.join(VISION_STAGES)} (pref_loss sigmoid, hinge or ipo), not {stage.name}"
        )

    def row(sample: Sample, default_system: str | None) -> Row:
        return vision_row(sample, stage.name, default_system, config.dataset_dir)

    return row


def load_vision_processor(config: TrainConfig, echo: Callable[[str], None]) -> Any:
    """The processor of the run's VLM, resizing images into ``image_min_pixels`` .. ``image_max_pixels``."""
    from fmtkit.models.vision import has_torchvision, load_processor, set_image_pixels

    processor = load_processor(config.model_name_or_path)
    if config.template:
        echo(f"note: template {config.template} is not used for a vision-language model: its processor's chat template is")
    if not set_image_pixels(processor, config.image_max_pixels, config.image_min_pixels):
        echo("note: image_max_pixels / image_min_pixels ignored: this processor sizes images itself")
    tokenizer = processor.tokenizer
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not has_torchvision():
        echo("note: torchvision is not importable: the processor handles images only (videos need torchvision)")
    return processor


def with_images(dataset: Dataset) -> Dataset:
    """The ``images`` column (file paths) read as images by ``datasets`` (decoded when a row is read)."""
    import datasets
    from datasets import Image, List

    quiet = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()  # no "Casting the dataset" bar in the run's log
    try:
        return dataset.cast_column("images", List(Image()))
    finally:
        if not quiet:
            datasets.enable_progress_bars()


# ---------------------------------------------------------------- the data check


VISION_DROP_REASONS = {
    "no_trained_token": "the chat template puts no token of the answer in the loss",
    "images_past_cutoff_len": "an image's tokens do not fit in cutoff_len (TRL cannot feed a cut image)",
    "answer_past_cutoff_len": "every trained token lies past cutoff_len",
    "template_error": "the processor or its chat template fails on it",
}


def _images(row: dict[str, Any]) -> list[Any]:
    from fmtkit.models.vision import open_image

    return [open_image(p) if isinstance(p, str) else p for p in row["images"]]


def measure_vision_row(row: dict[str, Any], processor: Any, stage: str, cutoff: int, assistant_only: bool, template: str | None) -> dict:
    """Tokens of one row as TRL's collator makes them (image tokens included): ``length``, ``trained`` (after
    cutoff_len), ``trained_full``, ``image_tokens``, ``drop`` ("" or a reason of :data:`VISION_DROP_REASONS`)."""
    from trl.data_utils import prepare_multimodal_messages

    from fmtkit.models.vision import flat_ids

    images = _images(row)
    image_id = getattr(processor, "image_token_id", None)

    def encode(messages: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        filled = prepare_multimodal_messages(messages, images=images)
        return processor.apply_chat_template(filled, chat_template=template, tokenize=True, return_dict=True, **kwargs)

    try:
        if stage == "sft":
            done = encode(row["messages"], return_assistant_tokens_mask=assistant_only)
            ids = flat_ids(done["input_ids"])
            mask = flat_ids(done["assistant_masks"]) if assistant_only else [1] * len(ids)
            start, lengths = 0, [len(ids)]
            full, kept = sum(mask), sum(mask[:cutoff])
            fulls = [ids]
        else:
            prompt = flat_ids(encode(row["prompt"], add_generation_prompt=True)["input_ids"])
            fulls = [flat_ids(encode(row["prompt"] + row[side])["input_ids"]) for side in ("chosen", "rejected")]
            start = len(prompt)
            lengths = [len(ids) - start for ids in fulls]
            full = sum(lengths)
            kept = sum(min(n, max(0, cutoff - start)) for n in lengths)
    except Exception as exc:  # noqa: BLE001 - a row the processor or template fails on is reported, not a crash
        return {"length": 0, "trained": 0, "trained_full": 0, "image_tokens": 0, "drop": f"template_error:{exc}"}
    positions = [i for i, t in enumerate(fulls[0]) if t == image_id]
    out = {"length": start + max(lengths), "trained": kept, "trained_full": full, "image_tokens": len(positions)}
    if not full:
        return {**out, "drop": "no_trained_token"}
    if positions and positions[-1] >= cutoff:
        return {**out, "drop": "images_past_cutoff_len"}
    if not kept:
        return {**out, "drop": "answer_past_cutoff_len"}
    return {**out, "drop": ""}


def check_vision_data(
    config: TrainConfig, stage: Any, processor: Any, dataset: Dataset, echo: Callable[[str], None], what: str = "training"
) -> tuple[Dataset, dict[str, Any]]:
    """Measure every row (:func:`measure_vision_row`), drop those that cannot train; the rows left (images as
    images) and the ``data_warnings`` of ``train_summary.json``."""
    from collections import Counter

    from fmtkit.models.vision import loss_template

    only_assistant = stage.name == "sft" and not config.train_on_prompt
    template = loss_template(processor) if only_assistant else None
    if only_assistant and template is None:
        raise FmtkitError(
            f"the chat template of {config.model_name_or_path} has no {{% generation %}} markers and TRL has no "
            "training version of it, so assistant-only loss would train nothing: set `train_on_prompt: true`",
            exit_code=EXIT_FINDINGS,
        )
    cutoff = config.cutoff_len
    measured = [measure_vision_row(row, processor, stage.name, cutoff, only_assistant, template) for row in dataset]
    reasons: Counter[str] = Counter(m["drop"].partition(":")[0] for m in measured if m["drop"])
    first_error = next((m["drop"].partition(":")[2] for m in measured if m["drop"].startswith("template_error")), None)
    keep = [i for i, m in enumerate(measured) if not m["drop"]]
    kept = dataset if len(keep) == len(dataset) else dataset.select(keep)
    truncated = sum(1 for i in keep if measured[i]["length"] > cutoff)
    warnings_: dict[str, Any] = {
        "samples_total": len(dataset),
        "samples_trained": len(keep),
        "samples_truncated": truncated,
        "samples_dropped": dict(reasons),
        "cutoff_len": cutoff,
        "over_cutoff_effect": "truncated",
        "supervised_tokens": sum(measured[i]["trained"] for i in keep),
        "supervised_tokens_lost": sum(m["trained_full"] - m["trained"] for m in measured if not m["drop"].startswith("template")),
        "image_tokens": sum(m["image_tokens"] for m in measured),
        "template_problems": {},
        "render_errors": reasons.get("template_error", 0),
    }
    echo(
        f"data check ({len(dataset):,} {what} samples with images, in tokens as the processor makes them): "
        f"{len(keep):,} kept, {warnings_['image_tokens']:,} image tokens"
    )
    if truncated:
        echo(f"warning: {truncated:,} samples exceed cutoff_len {cutoff} and are truncated (after their images)")
    for reason, n in reasons.items():
        why = VISION_DROP_REASONS[reason] + (f" ({first_error})" if reason == "template_error" and first_error else "")
        echo(f"warning: {n:,} of {len(dataset):,} {what} samples dropped: {why}")
    if not keep and what == "training":
        raise FmtkitError("every training sample is dropped: training would learn nothing; raise cutoff_len", exit_code=EXIT_FINDINGS)
    return with_images(kept), warnings_


# ---------------------------------------------------------------- freezing


def vision_parts(model_path: str) -> VisionParts:
    from fmtkit.models.vision import model_config

    return VISION_PARTS.get(str(model_config(model_path).get("model_type")), DEFAULT_PARTS)


def frozen_parts(config: TrainConfig) -> tuple[str, ...]:
    """The module-name parts that do not train: the tower (``freeze_vision_tower``), the projector (``freeze_multi_modal_projector``)."""
    parts = vision_parts(config.model_name_or_path)
    return (parts.tower if config.freeze_vision_tower else ()) + (parts.projector if config.freeze_multi_modal_projector else ())


def lora_targets(config: TrainConfig, targets: list[str]) -> list[str]:
    """The full names of the modules LoRA wraps in a VLM: the linear layers named by ``lora_target`` (all of them
    for ``all``), outside the frozen parts and the family's LoRA conflicts, as LLaMA-Factory picks them."""
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(AutoConfig.from_pretrained(config.model_name_or_path))
    forbidden = (*frozen_parts(config), *vision_parts(config.model_name_or_path).lora_conflicts, "lm_head")
    every = targets in ([], ["all"])
    names = []
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or any(part in name for part in forbidden):
            continue
        if every or name.split(".")[-1] in targets:
            names.append(name)
    if not names:
        raise FmtkitError(f"lora_target {config.lora_target!r} matches no module of the model outside its frozen vision parts")
    return names


def freeze_vision_parts(model: Any, config: TrainConfig) -> int:
    """Full fine-tuning: stop the gradients of the frozen vision parts; returns how many tensors were frozen."""
    parts = frozen_parts(config)
    frozen = 0
    for name, param in model.named_parameters():
        if param.requires_grad and any(part in name for part in parts):
            param.requires_grad_(False)
            frozen += 1
    return frozen
