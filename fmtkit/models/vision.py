"""Vision-language models: which folders hold one, their processor, and messages with images.

A model folder is a vision-language model (VLM) when its ``config.json`` has a
``vision_config`` (Qwen2-VL, Qwen2.5-VL, LLaVA, Gemma 3...). Its *processor*
turns a chat with images into tokens and pixels: the tokenizer, the image
processor, and the chat template, which writes each image as the model's
image tokens (Qwen2-VL: ``<|vision_start|><|image_pad|><|vision_end|>``; the
processor then repeats ``<|image_pad|>`` once per merged image patch).

:func:`load_processor` loads it with ``AutoProcessor``. transformers builds
the processors of video-capable models (Qwen2-VL) only with torchvision,
whose wheels are built for one torch build: where torchvision cannot be
imported, the processor is built for images only (:func:`image_only_processor_class`)
from the folder's PIL image processor and tokenizer; videos then need torchvision.

Messages with images use the structured content of chat templates: the
``<image>`` placeholders of LLaMA-Factory's data become ``{"type": "image"}``
blocks in place (:func:`content_blocks`, :func:`chat_with_images`).
:func:`render_vision_sample` is ``fmtkit render``'s view of a sample with its
image tokens, masked with :func:`loss_template` as training masks it;
``fmtkit stats`` counts the same tokens (:func:`vision_ids_and_mask`).

>>> content_blocks("<image>What is this?")
[{'type': 'image'}, {'type': 'text', 'text': 'What is this?'}]
>>> image_pixels_range(None, 768 * 768, 32 * 32)
(1024, 589824)

torch, transformers and PIL are imported inside the functions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fmtkit.errors import FmtkitError, first_line

IMAGE_PLACEHOLDER = "<image>"
VIDEO_PLACEHOLDER = "<video>"
# LLaMA-Factory's defaults for image_max_pixels / image_min_pixels.
IMAGE_MAX_PIXELS = 768 * 768
IMAGE_MIN_PIXELS = 32 * 32


def model_config(path: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a local model folder ({} when there is none or it is not JSON)."""
    try:
        data = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def is_vision_model(path: str | Path) -> bool:
    """Whether the model folder holds a vision-language model (its config has a ``vision_config``)."""
    return isinstance(model_config(path).get("vision_config"), dict)


def is_processor(obj: Any) -> bool:
    """Whether ``obj`` is a multimodal processor (a tokenizer is not)."""
    from transformers import ProcessorMixin

    return isinstance(obj, ProcessorMixin)


def has_torchvision() -> bool:
    """Whether torchvision imports (a build for another torch, e.g. CUDA beside a CPU torch, does not)."""
    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001 - ImportError, or the RuntimeError of a mismatched build
        return False
    return True


def image_only_processor_class(name: str) -> type:
    """The transformers processor class ``name`` (e.g. ``Qwen2VLProcessor``) without its video processor.

    Same name, same behaviour for text and images; saved, it reads as the original class.
    """
    import transformers

    base = getattr(transformers, name)

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        # The base passes video_processor=None third; the attributes of this class are the first two only.
        base.__init__(self, image_processor, tokenizer, None, chat_template=chat_template, **kwargs)
        self.video_processor = None

    return type(name, (base,), {"__init__": __init__, "__module__": base.__module__})


def _processor_class_name(path: str | Path) -> str | None:
    for file in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
        try:
            data = json.loads((Path(path) / file).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("processor_class"), str):
            return data["processor_class"]
    return None


def load_processor(path: str | Path, tokenizer_path: str | Path | None = None) -> Any:
    """The processor of the VLM in ``path`` (tokenizer and chat template from ``tokenizer_path`` when given, e.g. an adapter).

    ``AutoProcessor`` first; where torchvision cannot be imported, the same processor for images only.
    """
    from transformers import AutoImageProcessor, AutoProcessor, AutoTokenizer

    source = str(tokenizer_path or path)
    try:
        processor = AutoProcessor.from_pretrained(source)
    except Exception as exc:  # noqa: BLE001 - whatever transformers raises for a processor it cannot build
        if has_torchvision():
            raise FmtkitError(f"cannot load the processor of {source!r}: {first_line(exc)}") from None
        name = _processor_class_name(source) or _processor_class_name(path)
        if name is None:
            raise FmtkitError(f"cannot load the processor of {source!r} (no processor_class in its files)") from None
        try:
            tokenizer = AutoTokenizer.from_pretrained(source)
            processor = image_only_processor_class(name)(
                image_processor=AutoImageProcessor.from_pretrained(source),
                tokenizer=tokenizer,
                chat_template=tokenizer.chat_template,
            )
        except Exception as inner:  # noqa: BLE001
            raise FmtkitError(
                f"cannot load the processor of {source!r} without torchvision: {first_line(inner)}; "
                "install the torchvision built for your torch"
            ) from None
    if not is_processor(processor):
        raise FmtkitError(f"{source!r} has no image processor: is it a vision-language model?")
    return processor


def counting_processor(path: str | Path, template: str | None = None) -> Any:
    """The processor ``fmtkit render`` and ``fmtkit stats`` count with: images sized as ``fmtkit train`` sizes them
    by default (LLaMA-Factory's ``image_max_pixels`` / ``image_min_pixels``); a VLM renders with its own chat template."""
    if template:
        raise FmtkitError("--template: a vision-language model renders with its processor's chat template")
    processor = load_processor(path)
    set_image_pixels(processor, None, None)
    return processor


def _pixel_bounded(image_processor: Any) -> bool:
    """Whether the image processor sizes images by pixel count (``min_pixels`` / ``max_pixels``: Qwen2-VL's family)."""
    kwargs = getattr(image_processor, "valid_kwargs", None)
    return "max_pixels" in getattr(kwargs, "__annotations__", {})


def image_pixels_range(processor: Any, max_pixels: int | None, min_pixels: int | None) -> tuple[int, int]:
    """The pixel range an image is resized into: LLaMA-Factory's ``image_min_pixels`` / ``image_max_pixels``
    (defaults 32*32 and 768*768) within the processor's own range when it has one."""
    low, high = min_pixels or IMAGE_MIN_PIXELS, max_pixels or IMAGE_MAX_PIXELS
    image_processor = getattr(processor, "image_processor", None)
    size = getattr(image_processor, "size", None) or {}
    own_low, own_high = _get(size, "shortest_edge"), _get(size, "longest_edge")
    if _pixel_bounded(image_processor) and own_low and own_high:
        low, high = max(low, own_low), min(high, own_high)
    return low, max(low, high)


def _get(size: Any, key: str) -> int | None:
    value = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
    return value if isinstance(value, int) else None


def set_image_pixels(processor: Any, max_pixels: int | None, min_pixels: int | None) -> bool:
    """Make the processor resize images into :func:`image_pixels_range`; False when its image processor
    has no pixel-count bounds (then images keep the processor's own sizing)."""
    image_processor = getattr(processor, "image_processor", None)
    if not _pixel_bounded(image_processor):
        return False
    low, high = image_pixels_range(processor, max_pixels, min_pixels)
    image_processor.size = {"shortest_edge": low, "longest_edge": high}
    return True


def content_blocks(text: str) -> list[dict[str, Any]]:
    """A message text as chat-template content blocks, each ``<image>`` / ``<video>`` placeholder a block in place.

    >>> content_blocks("Compare <image> and <image>.")
    [{'type': 'text', 'text': 'Compare '}, {'type': 'image'}, {'type': 'text', 'text': ' and '}, {'type': 'image'}, {'type': 'text', 'text': '.'}]
    """
    import re

    blocks: list[dict[str, Any]] = []
    for part in re.split(f"({re.escape(IMAGE_PLACEHOLDER)}|{re.escape(VIDEO_PLACEHOLDER)})", text):
        if part == IMAGE_PLACEHOLDER:
            blocks.append({"type": "image"})
        elif part == VIDEO_PLACEHOLDER:
            blocks.append({"type": "video"})
        elif part:
            blocks.append({"type": "text", "text": part})
    return blocks


def open_image(path: str | Path) -> Any:
    """An image file as an RGB PIL image (a clear error for a file that is not one)."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise FmtkitError("reading images needs Pillow: pip install 'fmtkit[vision]'") from None

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError) as exc:
        raise FmtkitError(f"cannot read the image {path}: {first_line(exc)}") from None


def loss_template(processor: Any) -> str | None:
    """The chat template the loss is masked with: the processor's when it has ``{% generation %}`` markers, else
    TRL's training version of it (what ``fmtkit train`` and TRL's SFT trainer use); None when neither has markers."""
    from fmtkit.templates import has_generation_markers

    template = processor.chat_template
    if has_generation_markers(template):
        return template
    try:
        from trl.chat_template_utils import get_training_chat_template

        return get_training_chat_template(processor)
    except (ImportError, ValueError):
        return None


def chat_with_images(messages: list[dict[str, Any]], images: list[Any]) -> list[dict[str, Any]]:
    """Messages with text content as content blocks (:func:`content_blocks`), the images filled into the image blocks in order.

    >>> chat_with_images([{"role": "user", "content": "<image>Hi"}], ["IMG"])
    [{'role': 'user', 'content': [{'type': 'image', 'image': 'IMG'}, {'type': 'text', 'text': 'Hi'}]}]
    """
    queue = list(images)
    out = []
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, str):
            blocks = content_blocks(content)
            for block in blocks:
                if block["type"] == "image" and queue:
                    block["image"] = queue.pop(0)
            msg = {**msg, "content": blocks}
        out.append(msg)
    return out


def render_vision_sample(processor: Any, sample: Any, base_dir: str | Path, answer: str = "chosen") -> Any:
    """:func:`fmtkit.stats.render.render_sample` for a VLM: the tokens the processor makes, each image expanded to its
    image tokens (never trained); the loss mask from :func:`loss_template`."""
    from fmtkit.stats.conversation import sequences
    from fmtkit.stats.render import RenderedSample, Token

    seqs = sequences(sample)
    template = loss_template(processor)
    if not seqs:
        return RenderedSample("", kind=sample.kind, markers=template is not None)
    seq = seqs[1] if answer == "rejected" and len(seqs) > 1 else seqs[0]
    if seq.text is not None:
        raise FmtkitError("a pretraining sample has no chat to render with a processor")
    images = [open_image(Path(base_dir) / path) for path in sample.images]
    ids, mask = vision_ids_and_mask(processor, seq, images, template)
    tokenizer = processor.tokenizer
    tokens = [Token(i, tokenizer.decode([i]), bool(m)) for i, m in zip(ids, mask, strict=True)]
    which = ("chosen" if seq is seqs[0] else "rejected") if sample.kind == "preference" else None
    return RenderedSample("".join(t.text for t in tokens), tokens, kind=sample.kind, answer=which, markers=template is not None)


def vision_ids_and_mask(processor: Any, seq: Any, images: list[Any], template: str | None) -> tuple[list[int], list[int]]:
    """The token ids of one chat sequence (:class:`~fmtkit.stats.conversation.ChatSequence`) with its images, each
    expanded to its image tokens, and its loss mask (all 0 when ``template`` is None or for a prompt).

    What ``fmtkit render`` shows and ``fmtkit stats`` counts for a VLM; ``template`` is :func:`loss_template`'s.
    """
    from fmtkit.stats.render import template_errors

    messages = chat_with_images(seq.messages, images)
    use_mask = template is not None and not seq.generation_prompt
    with template_errors():
        out = processor.apply_chat_template(
            messages,
            chat_template=template or processor.chat_template,
            tokenize=True,
            return_dict=True,
            add_generation_prompt=seq.generation_prompt,
            return_assistant_tokens_mask=use_mask,
        )
    ids = [int(i) for i in flat_ids(out["input_ids"])]
    mask = [int(m) for m in flat_ids(out["assistant_masks"])] if use_mask else [0] * len(ids)
    return ids, mask


def flat_ids(value: Any) -> list[int]:
    """One row of ids (or mask) as a list, whether the processor returned one row, a batch of one, or a tensor.

    >>> flat_ids([[1, 2]]), flat_ids([1, 2])
    ([1, 2], [1, 2])
    """
    value = value.tolist() if hasattr(value, "tolist") else list(value)
    return list(value[0]) if value and isinstance(value[0], (list, tuple)) else value
