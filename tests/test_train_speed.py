"""The SFT loss without TRL's per-step extra metrics: the same value, and no entropy / accuracy computed."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.train, pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing")]
pytest.importorskip("trl")


def _sft_trainer(tiny_model, tmp_path, plain: bool, monkeypatch):
    import trainer_plugin.stages.sft as sft
    from fmtkit.sample import Sample, Turn
    from trainer_plugin.config import load_config
    from trainer_plugin.data import sft_row, to_dataset
    from trainer_plugin.run import load_tokenizer
    from trainer_plugin.stages import StageContext

    monkeypatch.setattr(sft, "PLAIN_LOSS", plain)
    cfg, _ = load_config(
        {"model_name_or_path": str(tiny_model), "dataset": "x", "output_dir": str(tmp_path / "o"), "template": "qwen3"}
    )
    tokenizer = load_tokenizer(cfg, sft.STAGE, echo=lambda _: None)
    rows = [
        sft_row(Sample(system="Be brief.", turns=[Turn("user", f"Question {i}?"), Turn("assistant", "Answer " * (i + 1))]))
        for i in range(3)
    ]
    ctx = StageContext(
        cfg, tokenizer, to_dataset(rows), None, use_cpu=True, bf16=False, fp16=False, activation_checkpointing=False
    )
    return sft.STAGE.build(ctx)


def test_the_plain_sft_loss_equals_trls_and_skips_its_metrics(tiny_model, tmp_path, monkeypatch):
    import torch

    losses, metrics = {}, {}
    for plain in (False, True):
        torch.manual_seed(0)  # the same LoRA initialisation
        trainer = _sft_trainer(tiny_model, tmp_path, plain, monkeypatch)
        batch = trainer.data_collator([trainer.train_dataset[i] for i in range(3)])
        trained = int((batch["labels"][:, 1:] != -100).sum())
        for key, value in batch.items():
            batch[key] = value.to(trainer.model.device)
        with torch.no_grad():
            # as one accumulated step of a longer batch counts its tokens: num_items_in_batch
            losses[plain] = (
                float(trainer.compute_loss(trainer.model, dict(batch))),
                float(trainer.compute_loss(trainer.model, dict(batch), num_items_in_batch=torch.tensor(2 * trained))),
            )
        metrics[plain] = dict(trainer._metrics["train"])
    assert losses[True] == pytest.approx(losses[False], rel=1e-5)
    assert losses[True][1] == pytest.approx(losses[True][0] / 2, rel=1e-5)
    assert {"entropy", "mean_token_accuracy"} <= set(metrics[False]) and metrics[True] == {}
