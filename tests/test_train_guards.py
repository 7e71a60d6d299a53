"""No silent failure: rows with nothing to train are dropped and counted, non-finite losses and weights fail the run.

The run that once saved an all-NaN adapter with exit 0: ``stage: dpo`` with
``pref_loss: simpo`` or ``orpo``, a ``cutoff_len`` the prompt fills, two
samples, two steps. TRL's ORPO / CPO truncate only the answer, so the answer
was empty and its length-normalised log-probability 0/0.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from cli_runner import run_cli_joined
from test_train_cli import config, data_dir  # noqa: F401 - fixtures

pytestmark = [pytest.mark.train, pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing")]
pytest.importorskip("trl")

fmtkit = run_cli_joined
LONG_PROMPT = "Repeat after me: " + "apples and pears and plums " * 12


def _pairs(folder: Path, prompts: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    records = [{"instruction": p, "chosen": "No, tigers are carnivores.", "rejected": "Yes."} for p in prompts]
    (folder / "pairs.json").write_text(json.dumps(records), encoding="utf-8")
    info = {
        "pairs": {
            "file_name": "pairs.json",
            "ranking": True,
            "columns": {"prompt": "instruction", "chosen": "chosen", "rejected": "rejected"},
        }
    }
    (folder / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    return folder


def _finite_adapter(out: Path) -> bool:
    from trainer_plugin.progress import nonfinite_tensors

    return (out / "adapter_model.safetensors").is_file() and nonfinite_tensors(out) == []


@pytest.mark.parametrize("pref_loss", ["simpo", "orpo"])
def test_prompts_that_fill_cutoff_len_fail_loudly_or_train_finite(capsys, config, tmp_path, pref_loss):
    # the case: two samples whose prompts fill cutoff_len, two steps
    data = _pairs(tmp_path / "long", [LONG_PROMPT, LONG_PROMPT + "?"])
    path, out = config(stage="dpo", pref_loss=pref_loss, dataset="pairs", dataset_dir=str(data), cutoff_len=24, truncation="trl")
    code, log = fmtkit(capsys, "train", path)
    assert code == 1, log
    assert "every training sample is dropped (2 the prompt alone fills cutoff_len" in log
    assert "loading" not in log and not out.exists()  # stopped before the model loaded

    # one long prompt among short ones: it is dropped and counted, the rest trains to finite weights
    data = _pairs(tmp_path / "mixed", [LONG_PROMPT, "Do tigers eat grass?", "Do cows eat grass?"])
    path, out = config(stage="dpo", pref_loss=pref_loss, dataset="pairs", dataset_dir=str(data), cutoff_len=24, truncation="trl")
    code, log = fmtkit(capsys, "train", path)
    assert code == 0, log
    assert "warning: 1 of 3 samples dropped, training on nothing: the prompt alone fills cutoff_len" in log
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["status"] == "completed" and summary["nonfinite_loss_steps"] == 0
    assert summary["train_samples"] == 2
    assert summary["data_warnings"]["samples_dropped"] == {"prompt_fills_cutoff_len": 1}
    assert all(math.isfinite(item["loss"]) for item in summary["losses"])
    assert _finite_adapter(out)


class _Poison:
    """A callback that turns one trainable weight into NaN after the first step: every later loss is NaN."""

    def __new__(cls):
        import torch
        from transformers import TrainerCallback

        class Poison(TrainerCallback):
            def on_step_end(self, args, state, control, model=None, **kwargs):
                if state.global_step == 1:
                    with torch.no_grad():
                        next(p for p in model.parameters() if p.requires_grad).fill_(math.nan)

        return Poison()


def test_a_nan_loss_fails_the_run_and_marks_it_failed(config, tmp_path):
    from fmtkit.errors import FmtkitError
    from trainer_plugin.config import load_config, read_yaml
    from trainer_plugin.run import prepare_data, train_on_datasets
    from trainer_plugin.stages import get_stage

    path, out = config(stage="dpo", pref_loss="simpo", dataset="pref", max_steps=3)
    cfg, _ = load_config(read_yaml(path))
    data = prepare_data(cfg, get_stage(cfg.trainer_stage), echo=lambda _: None)
    lines: list[str] = []
    with pytest.raises(FmtkitError, match="training failed: the loss was NaN or inf at 2 training step") as caught:
        train_on_datasets(cfg, data.train, echo=lines.append, callbacks=[_Poison()], data=data)
    assert caught.value.exit_code == 1
    assert "saved weight tensor(s) hold NaN or inf" in str(caught.value)
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["status"] == "failed" and "NaN" in summary["failure"]
    assert summary["nonfinite_loss_steps"] == 2
    # the logged losses say NaN too (transformers' own logging would have shown an average)
    assert [math.isnan(item["loss"]) for item in summary["losses"]] == [False, True, True]
    assert any("loss nan" in line for line in lines)


@pytest.mark.parametrize("stage", ["orpo", "simpo"])
def test_orpo_and_simpo_train_the_stop_token_once(tiny_model, tmp_path, stage):
    from fmtkit.sample import Sample, Turn
    from trainer_plugin.config import load_config
    from trainer_plugin.data import preference_row, to_dataset
    from trainer_plugin.run import load_tokenizer
    from trainer_plugin.stages import StageContext, get_stage

    cfg, _ = load_config(
        {
            "model_name_or_path": str(tiny_model),
            "dataset": "x",
            "output_dir": str(tmp_path / "o"),
            "template": "qwen3",
            "stage": "dpo",
            "pref_loss": stage,
        }
    )
    tokenizer = load_tokenizer(cfg, get_stage(stage), echo=lambda _: None)
    sample = Sample(turns=[Turn("user", "Hi")], chosen=Turn("assistant", "Good luck!"), rejected=Turn("assistant", "No."))
    ctx = StageContext(
        cfg,
        tokenizer,
        to_dataset([preference_row(sample)]),
        None,
        use_cpu=True,
        bf16=False,
        fp16=False,
        activation_checkpointing=False,
    )
    row = get_stage(stage).build(ctx).train_dataset[0]
    trained = tokenizer.decode([t for t in row["chosen_labels"] if t != -100])
    assert trained == "<think>\n\n</think>\n\nGood luck!<|im_end|>\n"


# --- the counts are those of the data the trainer consumes -------------------------------------------


def _rows(stage: str) -> list[dict]:
    """Rows that fit, rows cut at a cutoff_len of 40, rows left with nothing to train (a long question), and
    prompts with a long earlier answer, which the preference stages do not train."""
    from fmtkit.sample import Sample, Turn
    from trainer_plugin.data import kto_row, preference_row, sft_row

    long = "apples and pears and plums " * 6
    history = [Turn("user", "Hi"), Turn("assistant", long), Turn("user", "And?")]
    prompts = [[Turn("user", "Hi")], [Turn("user", long)], history]
    answers = ["Yes.", long, "No."]
    samples = []
    for prompt in prompts:
        for answer in answers:
            if stage == "sft":
                samples.append(sft_row(Sample(turns=[*prompt, Turn("assistant", answer)])))
            elif stage == "kto":
                samples.append(kto_row(Sample(turns=[*prompt, Turn("assistant", answer)], label=len(samples) % 2 == 0)))
            else:
                sample = Sample(turns=prompt, chosen=Turn("assistant", answer), rejected=Turn("assistant", "No."))
                samples.append(preference_row(sample))
    return samples


@pytest.mark.parametrize("stage", ["sft", "dpo", "kto", "rm", "simpo"])
def test_the_data_check_counts_what_the_trainer_consumes(tiny_model, tmp_path, stage):
    from trainer_plugin.checks import check_data
    from trainer_plugin.config import load_config
    from trainer_plugin.data import to_dataset
    from trainer_plugin.run import load_tokenizer
    from trainer_plugin.stages import StageContext, get_stage

    cutoff = 40
    keys = {"stage": "dpo", "pref_loss": stage} if stage == "simpo" else {"stage": stage}
    cfg, _ = load_config(
        {
            "model_name_or_path": str(tiny_model),
            "dataset": "x",
            "output_dir": str(tmp_path / "o"),
            "template": "qwen3",
            "cutoff_len": cutoff,
            "truncation": "trl",  # TRL's trainers tokenize and cut the rows themselves
            "per_device_train_batch_size": 2,
            **keys,
        }
    )
    tokenizer = load_tokenizer(cfg, get_stage(stage), echo=lambda _: None)
    rows = to_dataset(_rows(stage))
    kept, warnings = check_data(cfg, get_stage(stage), tokenizer, tokenizer.chat_template, None, rows, lambda _: None)
    dropped = sum(warnings["samples_dropped"].values())
    assert warnings["samples_total"] == 9 and dropped > 0
    assert warnings["samples_truncated"] > 0 if stage != "rm" else warnings["samples_truncated"] == 0  # rm drops
    assert len(kept) == warnings["samples_trained"] == 9 - dropped

    # TRL's own preparation of every row (none dropped by fmtkit)
    ctx = StageContext(cfg, tokenizer, rows, None, use_cpu=True, bf16=False, fp16=False, activation_checkpointing=False)
    data = get_stage(stage).build(ctx).train_dataset
    if stage == "simpo":  # TRL keeps every row; those left without an answer token are the NaN ones
        trained = [sum(t != -100 for t in r["chosen_labels"]) + sum(t != -100 for t in r["rejected_labels"]) for r in data]
        assert sum(1 for n in trained if n == 0) == dropped
        assert sum(trained) == warnings["supervised_tokens"]
        return
    assert len(data) == warnings["samples_trained"]
    if stage == "sft":
        assert sum(sum(t != -100 for t in r["labels"]) for r in data) == warnings["supervised_tokens"]
    elif stage in ("dpo", "kto"):
        answers = ("chosen_ids", "rejected_ids") if stage == "dpo" else ("completion_ids",)
        room = [cutoff - len(r["prompt_ids"]) for r in data]
        assert sum(min(len(r[a]), n) for r, n in zip(data, room) for a in answers) == warnings["supervised_tokens"]
        over = sum(1 for r in data if len(r["prompt_ids"]) + max(len(r[a]) for a in answers) > cutoff)
        assert over == warnings["samples_truncated"]
        # no prompt kept its earlier answer as trained: rows whose history fills the cutoff are the dropped ones
        assert warnings["samples_dropped"] == {"prompt_fills_cutoff_len": dropped}


def _orpo_trainer(tiny_model, tmp_path, sft_loss: str, use_cpu_path: bool, **keys):
    """An ORPO trainer (``keys``: another preference loss, e.g. SimPO's) on three pairs of different prompt and answer lengths."""
    import torch

    from fmtkit.sample import Sample, Turn
    from trainer_plugin.config import load_config
    from trainer_plugin.data import preference_row, to_dataset
    from trainer_plugin.run import load_tokenizer
    from trainer_plugin.stages import StageContext, get_stage

    cfg, _ = load_config(
        {"model_name_or_path": str(tiny_model), "dataset": "x", "output_dir": str(tmp_path / "o"), "template": "qwen3",
         "stage": "dpo", "pref_loss": "orpo", "pref_beta": 0.5, "orpo_sft_loss": sft_loss, **keys}
    )  # fmt: skip
    tokenizer = load_tokenizer(cfg, get_stage(cfg.trainer_stage), echo=lambda _: None)
    prompts = ["Hi", "Name a colour, then explain at some length why it is your favourite one?", "Cats or dogs?"]
    rows = [
        preference_row(Sample(turns=[Turn("user", p)], chosen=Turn("assistant", "Blue " * (3 * i + 1)),
                              rejected=Turn("assistant", "No.")))
        for i, p in enumerate(prompts)
    ]  # fmt: skip
    torch.manual_seed(0)  # the same LoRA initialisation
    ctx = StageContext(cfg, tokenizer, to_dataset(rows), None, use_cpu=use_cpu_path, bf16=False, fp16=False,
                       activation_checkpointing=False)  # fmt: skip
    return get_stage(cfg.trainer_stage).build(ctx)


def _side_logps(trainer, batch, side: str):
    """Per sequence: each answer token's log-probability (0 elsewhere), its answer mask, and the sequence's logits."""
    import torch

    ids, attention, labels = (batch[f"{side}_{key}"] for key in ("input_ids", "attention_mask", "labels"))
    logits = trainer.model(input_ids=ids, attention_mask=attention).logits.float()[:, :-1]
    log_probs = logits.log_softmax(-1)
    answer = labels[:, 1:] != -100
    per_token = log_probs.gather(-1, labels[:, 1:].clamp(min=0).unsqueeze(-1)).squeeze(-1) * answer
    every = log_probs.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return per_token, answer, every, attention[:, 1:] == 1, torch


def _loss_and_sides(trainer):
    """The trainer's loss on its three pairs, and :func:`_side_logps` of the chosen and the rejected sides."""
    import torch

    trainer.model.eval()
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(3)])
    with torch.no_grad():
        loss = float(trainer.compute_loss(trainer.model, dict(batch)))
        return loss, _side_logps(trainer, batch, "chosen"), _side_logps(trainer, batch, "rejected")


@pytest.mark.parametrize("use_cpu_path", [False, True])
def test_orpo_loss_is_llamafactorys_formula_by_default_and_trls_on_request(tiny_model, tmp_path, use_cpu_path):
    """LLaMA-Factory's ORPO (train/dpo/trainer.py): per pair ``-logp_c + beta * -logsigmoid(log_odds)``, plus
    ``pref_ftx * -logp_c``, with ``logp`` an answer's mean token log-probability, averaged over pairs: the prompt
    is never trained. TRL's (``orpo_sft_loss: sequence``): the cross-entropy over every chosen token, prompt
    included, plus the same odds-ratio term (no ``pref_ftx``). Both computed here from the model's own logits,
    on TRL's path and fmtkit's CPU path."""
    losses, expected = {}, {}
    ftx = 0.3
    for mode in ("answer", "sequence"):
        trainer = _orpo_trainer(tiny_model, tmp_path, mode, use_cpu_path, pref_ftx=ftx)
        losses[mode], chosen_side, rejected_side = _loss_and_sides(trainer)
        (chosen, chosen_mask, chosen_every, chosen_attention, torch), (rejected, rejected_mask, *_) = chosen_side, rejected_side
        logp_c = chosen.sum(-1) / chosen_mask.sum(-1)
        logp_r = rejected.sum(-1) / rejected_mask.sum(-1)
        log_odds = (logp_c - logp_r) - (torch.log1p(-torch.exp(logp_c)) - torch.log1p(-torch.exp(logp_r)))
        odds_ratio = -torch.nn.functional.logsigmoid(log_odds)
        if mode == "answer":  # LLaMA-Factory's odds_ratio_loss + ftx_gamma * sft_loss, then .mean()
            expected[mode] = float((-logp_c + 0.5 * odds_ratio + ftx * -logp_c).mean())
        else:  # TRL's: nn.CrossEntropyLoss over every attended chosen token, then the mean odds-ratio term
            nll = -(chosen_every * chosen_attention).sum() / chosen_attention.sum()
            expected[mode] = float(nll + 0.5 * odds_ratio.mean())
    assert losses["answer"] == pytest.approx(expected["answer"], rel=1e-5)
    assert losses["sequence"] == pytest.approx(expected["sequence"], rel=1e-5)
    # the two terms differ on these pairs far beyond the tolerance (a random tiny model: log-probs close to -log V)
    assert expected["answer"] != pytest.approx(expected["sequence"], rel=1e-3)


@pytest.mark.parametrize("use_cpu_path", [False, True])
def test_simpo_sft_term_is_llamafactorys_per_pair_mean_by_default_and_trls_token_mean_on_request(tiny_model, tmp_path, use_cpu_path):
    """SimPO with ``pref_ftx``. LLaMA-Factory (train/dpo/trainer.py): per pair ``-logsigmoid(beta * (logp_c - logp_r
    - gamma / beta)) + ftx * -logp_c``, with ``logp`` an answer's mean token log-probability, averaged over pairs.
    TRL's CPO (``pref_ftx_average: token``): the same SimPO term averaged, plus ``ftx`` times the cross-entropy over
    every chosen answer token of the batch. Both computed from the model's own logits, on both paths."""
    beta, gamma, ftx = 2.0, 0.5, 0.7
    losses, expected = {}, {}
    for mode in ("sample", "token"):
        trainer = _orpo_trainer(tiny_model, tmp_path, "answer", use_cpu_path, pref_loss="simpo", pref_beta=beta,
                                simpo_gamma=gamma, pref_ftx=ftx, pref_ftx_average=mode)  # fmt: skip
        losses[mode], (chosen, chosen_mask, *_, torch), (rejected, rejected_mask, *_) = _loss_and_sides(trainer)
        logp_c = chosen.sum(-1) / chosen_mask.sum(-1)
        logp_r = rejected.sum(-1) / rejected_mask.sum(-1)
        simpo = -torch.nn.functional.logsigmoid(beta * (logp_c - logp_r - gamma / beta))
        if mode == "sample":  # LLaMA-Factory's simpo_loss + ftx_gamma * sft_loss, then .mean()
            expected[mode] = float((simpo + ftx * -logp_c).mean())
        else:  # TRL's CPO: losses.mean() + cpo_alpha * nn.CrossEntropyLoss over the chosen answers' tokens
            expected[mode] = float(simpo.mean() + ftx * -chosen.sum() / chosen_mask.sum())
    assert losses["sample"] == pytest.approx(expected["sample"], rel=1e-5, abs=1e-5)
    assert losses["token"] == pytest.approx(expected["token"], rel=1e-5, abs=1e-5)
    # answers of 1, 4 and 7 words: the per-pair and per-token means differ by over 100 times the tolerance
    # (a random tiny model gives every token a log-probability close to -log V, so they differ little)
    assert abs(expected["sample"] - expected["token"]) > 1e-3


@pytest.mark.parametrize("use_cpu_path", [False, True])
def test_dpo_sft_term_is_llamafactorys_per_pair_mean_by_default_and_trls_token_mean_on_request(tiny_model, tmp_path, use_cpu_path):
    """DPO with ``pref_ftx``. LLaMA-Factory (train/dpo/trainer.py): per pair ``-logsigmoid(beta * ((c - c_ref) -
    (r - r_ref))) + ftx * -c / len(c)``, with ``c``, ``r`` the answers' summed token log-probabilities, averaged over
    pairs. TRL (``pref_ftx_average: token``, its ``sft`` loss): the same DPO term averaged, plus ``ftx`` times the NLL
    averaged over every chosen answer token of the batch. Both from the model's own logits (the reference: the
    adapter switched off; the adapter is perturbed so that the two differ)."""
    import torch

    beta, ftx = 0.5, 0.7
    losses, expected = {}, {}
    for mode in ("sample", "token"):
        trainer = _orpo_trainer(tiny_model, tmp_path, "answer", use_cpu_path, pref_loss="sigmoid", pref_beta=beta,
                                pref_ftx=ftx, pref_ftx_average=mode)  # fmt: skip
        model = trainer.model
        torch.manual_seed(1)
        with torch.no_grad():
            for name, weight in model.named_parameters():
                if "lora_B" in name:
                    weight.normal_(0, 0.05)
        model.eval()
        batch = trainer.data_collator([trainer.train_dataset[i] for i in range(3)])
        ids, attention, answer = batch["input_ids"], batch["attention_mask"], batch["completion_mask"][:, 1:] == 1

        def token_logps():
            logits = model(input_ids=ids, attention_mask=attention).logits.float()[:, :-1]
            return logits.log_softmax(-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1) * answer

        with torch.no_grad():
            losses[mode] = float(trainer.compute_loss(model, dict(batch)))
            policy = token_logps()
            with model.disable_adapter():
                reference = token_logps()
        (c, r), (c_ref, r_ref) = policy.sum(-1).chunk(2), reference.sum(-1).chunk(2)
        dpo = -torch.nn.functional.logsigmoid(beta * ((c - c_ref) - (r - r_ref)))
        chosen, chosen_mask = policy.chunk(2)[0], answer.chunk(2)[0]
        if mode == "sample":  # LLaMA-Factory: losses += ftx_gamma * -chosen_logps_avg, then .mean()
            expected[mode] = float((dpo + ftx * -c / chosen_mask.sum(-1)).mean())
        else:  # TRL: loss_type ["sigmoid", "sft"], weights [1, ftx]; sft = -chosen_per_token_logps[mask].mean()
            expected[mode] = float(dpo.mean() + ftx * -chosen.sum() / chosen_mask.sum())
    assert losses["sample"] == pytest.approx(expected["sample"], rel=1e-5, abs=1e-5)
    assert losses["token"] == pytest.approx(expected["token"], rel=1e-5, abs=1e-5)
    assert abs(expected["sample"] - expected["token"]) > 1e-3


def test_a_failed_final_save_leaves_the_previous_output_whole(config, tmp_path):
    """The final save (weights, tokenizer, config, summary) is atomic: a write that fails half way (here a real
    file size limit, ``ulimit -f``: the tokenizer's files are larger) leaves the previous run's files as they were
    and no temporary folder; the run exits 1 with a clear message."""
    import os
    import resource
    import subprocess
    import sys

    path, out = config(stage="sft", dataset="alpaca_sft", max_steps=1, save_strategy="no")  # no checkpoint: the final save only
    out.mkdir()
    (out / "adapter_model.safetensors").write_bytes(b"the previous run's weights")
    (out / "train_summary.json").write_text('{"status": "previous"}', encoding="utf-8")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    limit = 64 << 10
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "PYTHONDONTWRITEBYTECODE": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "fmtkit", "train", str(path)], env=env, capture_output=True, text=True, timeout=600,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)), check=False,
    )  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    assert "file size limit" in run.stderr and "Traceback" not in run.stderr, run.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in out.parent.iterdir() if ".fmtkit-" in p.name] == []

    # without the limit, the same run replaces them
    run = subprocess.run([sys.executable, "-m", "fmtkit", "train", str(path)], env=env, capture_output=True, text=True,
                         timeout=600, check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert json.loads((out / "train_summary.json").read_text())["status"] == "completed"
    assert _finite_adapter(out) and (out / "tokenizer.json").is_file()
