"""The SFT loss without TRL's per-step extra metrics: the same value, and no entropy / accuracy computed."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.train, pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing")]
pytest.importorskip("trl")


def _sft_trainer(tiny_model, tmp_path, plain: bool, monkeypatch, packing: bool = False):
    """An SFT trainer on three conversations; ``packing``: packed in one block (``sft_packing: llamafactory``)."""
    import trainer_plugin.stages.sft as sft
    from fmtkit.sample import Sample, Turn
    from trainer_plugin.checks import fit_dataset
    from trainer_plugin.config import load_config
    from trainer_plugin.data import sft_row, to_dataset
    from trainer_plugin.run import load_tokenizer
    from trainer_plugin.stages import StageContext

    monkeypatch.setattr(sft, "PLAIN_LOSS", plain)
    packed = {"packing": True, "sft_packing": "llamafactory", "cutoff_len": 256} if packing else {}
    cfg, _ = load_config(
        {"model_name_or_path": str(tiny_model), "dataset": "x", "output_dir": str(tmp_path / "o"), "template": "qwen3",
         **packed}
    )  # fmt: skip
    tokenizer = load_tokenizer(cfg, sft.STAGE, echo=lambda _: None)
    rows = to_dataset([
        sft_row(Sample(system="Be brief.", turns=[Turn("user", f"Question {i}?"), Turn("assistant", "Answer " * (i + 1))]))
        for i in range(3)
    ])  # fmt: skip
    if packing:
        rows, report = fit_dataset(cfg, sft.STAGE, tokenizer, rows)
        assert report.sequences == 1
    ctx = StageContext(cfg, tokenizer, rows, None, use_cpu=True, bf16=False, fp16=False, activation_checkpointing=False)
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


@pytest.mark.parametrize("packing", [False, True])
def test_sft_on_the_cpu_gives_the_plain_loss_and_gradients_from_the_trained_positions(
    tiny_model, tmp_path, monkeypatch, packing
):
    """The LM head projects only the positions whose next token is trained; loss and LoRA gradients equal
    the model's plain forward, alone and as one of two accumulated micro-batches (``num_items_in_batch``)."""
    import torch

    torch.manual_seed(0)
    trainer = _sft_trainer(tiny_model, tmp_path, True, monkeypatch, packing)
    assert trainer.trained_positions
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(trainer.train_dataset))])
    trained = int((batch["labels"][:, 1:] != -100).sum())
    assert 0 < trained < batch["labels"][:, 1:].numel()  # the prompts are not trained
    rows = []
    trainer.model.get_output_embeddings().register_forward_hook(lambda m, a, o: rows.append(a[0].shape))
    trainer.model.train()
    results = {}
    for fused in (False, True):
        trainer.trained_positions = fused
        for items in (None, torch.tensor(2 * trained)):
            trainer.model.zero_grad()
            rows.clear()
            loss = trainer.compute_loss(trainer.model, dict(batch), num_items_in_batch=items)
            loss.backward()
            grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
            results[fused, items is None] = float(loss.detach()), grads, list(rows)
    for alone in (True, False):
        (plain_loss, plain_grads, plain_rows), (loss, grads, rows) = results[False, alone], results[True, alone]
        assert loss == pytest.approx(plain_loss, rel=1e-5, abs=1e-6)
        assert grads.keys() == plain_grads.keys() and grads
        for name, grad in grads.items():
            assert torch.allclose(grad, plain_grads[name], rtol=1e-5, atol=1e-6), name
        assert [len(shape) for shape in plain_rows] == [3] and rows == [torch.Size([trained, rows[0][-1]])]
    assert results[True, False][0] == pytest.approx(results[True, True][0] / 2, rel=1e-5)


def _preference_trainer(tiny_model, tmp_path, stage: str, use_cpu_path: bool):
    """A DPO, KTO, ORPO or SimPO trainer on two tiny rows: with fmtkit's CPU path (``use_cpu_path``) or TRL's own."""
    import torch

    from fmtkit.sample import Sample, Turn
    from trainer_plugin.config import load_config
    from trainer_plugin.data import kto_row, preference_row, to_dataset
    from trainer_plugin.run import load_tokenizer
    from trainer_plugin.stages import StageContext, get_stage

    cfg, _ = load_config(
        {"model_name_or_path": str(tiny_model), "dataset": "x", "output_dir": str(tmp_path / "o"), "template": "qwen3",
         "stage": "kto" if stage == "kto" else "dpo", "pref_loss": "sigmoid" if stage in ("dpo", "kto") else stage,
         "per_device_train_batch_size": 2, "pref_ftx": 0.5 if stage == "simpo" else 0.0}
    )  # fmt: skip
    tokenizer = load_tokenizer(cfg, get_stage(stage), echo=lambda _: None)
    prompt = [Turn("user", "Name a colour, then explain why it is your favourite one?")]
    if stage != "kto":
        rows = [preference_row(Sample(turns=prompt, chosen=Turn("assistant", "Yes " * (i + 1)),
                                      rejected=Turn("assistant", "No."))) for i in range(2)]  # fmt: skip
    else:
        rows = [kto_row(Sample(turns=[*prompt, Turn("assistant", "Yes " * (i + 1))], label=i == 0)) for i in range(2)]
    torch.manual_seed(0)  # the same LoRA initialisation
    ctx = StageContext(cfg, tokenizer, to_dataset(rows), None, use_cpu=use_cpu_path, bf16=False, fp16=False,
                       activation_checkpointing=False)  # fmt: skip
    return get_stage(stage).build(ctx)


@pytest.mark.parametrize("stage", ["dpo", "kto", "orpo", "simpo"])
def test_preference_stages_on_the_cpu_give_trls_loss_gradients_and_metrics(tiny_model, tmp_path, stage):
    """A training step's loss (reference pass included), LoRA gradients and logged metrics equal TRL's
    default path; the LM head projects only the positions a loss term reads (SimPO: with an SFT term)."""
    import torch

    results = {}
    for cpu_path in (False, True):
        trainer = _preference_trainer(tiny_model, tmp_path, stage, cpu_path)
        batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
        rows = []
        hook = trainer.model.get_output_embeddings().register_forward_hook(lambda m, a, o: rows.append(a[0].shape))
        trainer.model.train()
        loss = trainer.compute_loss(trainer.model, dict(batch))
        loss.backward()
        hook.remove()
        grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
        logged = trainer._stored_metrics if stage in ("orpo", "simpo") else trainer._metrics  # TRL's experimental ones
        metrics = {k: float(v[-1]) for k, v in logged["train"].items()}
        results[cpu_path] = float(loss.detach()), grads, metrics, rows
    (trl_loss, trl_grads, trl_metrics, _), (loss, grads, metrics, rows) = results[False], results[True]
    assert loss == pytest.approx(trl_loss, rel=1e-5, abs=1e-6)
    assert grads.keys() == trl_grads.keys() and grads
    for name, grad in grads.items():
        assert torch.allclose(grad, trl_grads[name], rtol=1e-4, atol=1e-6), name
    assert metrics.keys() == trl_metrics.keys()
    assert metrics == pytest.approx(trl_metrics, rel=1e-4, abs=1e-5)
    # every LM head call (policy, reference, KTO's KL passes) gets the scored positions, not (batch, length, hidden)
    assert rows and all(len(shape) == 2 for shape in rows), rows


@pytest.mark.parametrize("stage", ["dpo", "kto"])
def test_dpo_and_kto_on_the_cpu_compute_trls_fields_from_the_trained_positions(tiny_model, tmp_path, stage):
    import torch

    from fmtkit.sample import Sample, Turn
    from trainer_plugin.config import load_config
    from trainer_plugin.data import kto_row, preference_row, to_dataset
    from trainer_plugin.run import load_tokenizer
    from trainer_plugin.stages import StageContext, get_stage

    cfg, _ = load_config(
        {"model_name_or_path": str(tiny_model), "dataset": "x", "output_dir": str(tmp_path / "o"), "template": "qwen3",
         "stage": stage, "per_device_train_batch_size": 2}
    )  # fmt: skip
    tokenizer = load_tokenizer(cfg, get_stage(stage), echo=lambda _: None)
    if stage != "kto":
        rows = [preference_row(Sample(turns=[Turn("user", f"Q{i}?")], chosen=Turn("assistant", "Yes " * (i + 1)),
                                      rejected=Turn("assistant", "No."))) for i in range(2)]  # fmt: skip
    else:
        rows = [kto_row(Sample(turns=[Turn("user", f"Q{i}?"), Turn("assistant", "Yes " * (i + 1))], label=i == 0))
                for i in range(2)]  # fmt: skip
    outputs = {}
    for cpu_path in (False, True):
        torch.manual_seed(0)
        ctx = StageContext(cfg, tokenizer, to_dataset(rows), None, use_cpu=cpu_path, bf16=False, fp16=False,
                           activation_checkpointing=False)  # fmt: skip
        trainer = get_stage(stage).build(ctx)
        ids = torch.tensor([tokenizer("Paris is the capital of France.")["input_ids"]] * 2)
        labels = ids.clone()
        labels[:, :3] = -100
        outputs[cpu_path] = trainer.model(input_ids=ids, labels=labels, fused_lm_head=True)
    trl, mine = outputs[False], outputs[True]
    assert torch.allclose(mine.log_probs, trl.log_probs, atol=1e-5)  # the loss's input: the same
    assert torch.allclose(mine.loss, trl.loss, atol=1e-5)
    assert torch.allclose(mine.entropy, trl.entropy, atol=1e-4)
    assert torch.allclose(mine.mean_logits, trl.mean_logits, atol=1e-4)
    if trl.is_top1 is not None:
        assert torch.equal(mine.is_top1, trl.is_top1)


def test_gpu_benchmark_parses_its_arguments_and_prints_the_config_both_tools_run(capsys):
    """The GPU benchmark's path without a GPU: one config in LLaMA-Factory's keys for fmtkit and llamafactory-cli."""
    import importlib.util
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("gpu_lora_sft", root / "bench" / "gpu_lora_sft.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--random", "qwen3-0.6b", "--dry-run", "--lf-python", "/opt/lf/bin/python"]) == 0
    printed = json.loads(capsys.readouterr().out)
    config = printed["config"]
    assert printed["lf_python"] == "/opt/lf/bin/python" and printed["warmup"] == 5
    assert config["stage"] == "sft" and config["bf16"] is True and config["logging_steps"] == 1
    assert config["per_device_train_batch_size"] == 8 and config["cutoff_len"] == 1024 and config["max_steps"] == 40
    assert bench.main(["--tiny", "--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["lf_python"] is None and printed["config"]["bf16"] is False  # the CPU smoke check: fmtkit alone
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--tiny", "--warmup", "0"])
    assert exit_.value.code == 2 and "--warmup" in capsys.readouterr().err
