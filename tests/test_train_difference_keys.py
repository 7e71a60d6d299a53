"""The differences with LLaMA-Factory 0.9.5 that a key switches: KTO's KL pairs, sft packing, neat_packing.

LLaMA-Factory's behaviour is the default, TRL's is one key away:

- ``kto_kl_pairs``: LLaMA-Factory pairs each prompt with the answer of the row before it when it encodes the
  data (its feedback processor), TRL within each batch of rows read in order. That fmtkit's KL sequences are
  LLaMA-Factory's, token for token, on the bundled KTO entries is checked in ``test_train_parity_entries.py``;
  here, that the trainer is fed them, and shuffles the rows as LLaMA-Factory does.
- ``sft_packing``: LLaMA-Factory's greedy knapsack (blocks compared with its own in
  ``test_train_parity_entries.py``) or TRL's best fit; here, what a packed block's sample attends to, with and
  without ``neat_packing``, from the model's own outputs.
- ``pref_ftx_average`` (dpo, simpo): its tests compute both formulas, beside ORPO's, in ``test_train_guards.py``.

Real (tiny) models, a few steps at most, on the CPU.
"""

from __future__ import annotations

import json
import math

import pytest
from cli_runner import run_cli_joined
from test_train_cli import config, data_dir  # noqa: F401 - fixtures

pytestmark = [pytest.mark.train, pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing")]
pytest.importorskip("trl")

fmtkit = run_cli_joined
IGNORE = -100


# --- the keys in the config -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"stage": "kto", "kto_kl_pairs": "batch"}, "kto_kl_pairs: 'batch' is not one of llamafactory, trl"),
        ({"stage": "sft", "packing": True, "sft_packing": "bfd"}, "sft_packing: 'bfd' is not one of llamafactory, trl"),
        ({"stage": "dpo", "pref_loss": "simpo", "pref_ftx_average": "mean"}, "pref_ftx_average: 'mean' is not one of sample, token"),
        ({"stage": "kto", "truncation": "trl", "kto_kl_pairs": "llamafactory"}, "kto_kl_pairs: llamafactory needs `truncation: llamafactory`"),
        ({"stage": "sft", "packing": True, "truncation": "trl", "sft_packing": "llamafactory"}, "sft_packing: llamafactory needs `truncation: llamafactory`"),
        ({"stage": "dpo", "neat_packing": True}, "neat_packing packs sft samples only (as in LLaMA-Factory), not stage dpo"),
    ],
)  # fmt: skip
def test_a_wrong_value_is_a_usage_error_naming_the_choices(capsys, config, keys, message):
    path, out = config(dataset="alpaca_sft", **keys)
    code, log = fmtkit(capsys, "train", path, "--dry-run")
    assert code == 2, log
    assert message in log and "Traceback" not in log
    assert not out.exists()


def test_unset_pairs_and_packing_follow_truncation_and_neat_packing_sets_packing():
    from trainer_plugin.config import load_config

    base = {"model_name_or_path": "m", "dataset": "d", "output_dir": "o"}
    config, _ = load_config({**base, "stage": "kto"})
    assert (config.resolved_kto_kl_pairs, config.resolved_sft_packing) == ("llamafactory", "llamafactory")
    config, _ = load_config({**base, "stage": "kto", "truncation": "trl"})
    assert (config.resolved_kto_kl_pairs, config.resolved_sft_packing) == ("trl", "trl")
    config, _ = load_config({**base, "truncation": "llamafactory", "kto_kl_pairs": "trl", "sft_packing": "trl"})
    assert (config.resolved_kto_kl_pairs, config.resolved_sft_packing) == ("trl", "trl")
    config, notes = load_config({**base, "neat_packing": True, "packing": False})
    assert config.packing is True and config.use_packing and any("neat_packing sets packing" in n for n in notes)


# --- KTO's KL pairs ------------------------------------------------------------------------------


def _kto_trainer(tiny_model, tmp_path, **keys):
    """A KTO trainer on five rows of different answers, tokenized as a run tokenizes them."""
    from fmtkit.sample import Sample, Turn
    from trainer_plugin.checks import fit_dataset
    from trainer_plugin.config import load_config
    from trainer_plugin.data import kto_row, to_dataset
    from trainer_plugin.run import load_tokenizer
    from trainer_plugin.stages import StageContext, get_stage

    cfg, _ = load_config(
        {"model_name_or_path": str(tiny_model), "dataset": "x", "output_dir": str(tmp_path / "o"), "template": "qwen3",
         "stage": "kto", "per_device_train_batch_size": 2, "max_steps": 2, "learning_rate": 1e-3, "save_strategy": "no",
         "report_to": "none", **keys}
    )  # fmt: skip
    stage = get_stage("kto")
    tokenizer = load_tokenizer(cfg, stage, echo=lambda _: None)
    rows = [kto_row(Sample(turns=[Turn("user", f"Question {i}?"), Turn("assistant", "yes " * (i + 1))], label=i % 2 == 0))
            for i in range(5)]  # fmt: skip
    train, _ = fit_dataset(cfg, stage, tokenizer, to_dataset(rows))
    ctx = StageContext(cfg, tokenizer, train, None, use_cpu=True, bf16=False, fp16=False, activation_checkpointing=False)
    return stage.build(ctx), train


def _unpadded(ids, mask) -> list[int]:
    return [int(t) for t, m in zip(ids, mask, strict=True) if m]


def test_kto_trains_on_llamafactorys_kl_pairs_shuffled(tiny_model, tmp_path):
    """Row i's KL sequence is its prompt and row i - 1's answer (row 0: the last row's), as LLaMA-Factory
    encodes them; the trainer's batches carry exactly those sequences, and the rows are shuffled."""
    from torch.utils.data import RandomSampler

    trainer, train = _kto_trainer(tiny_model, tmp_path)
    answers = train["completion_ids"]
    assert train["KL_completion_ids"] == answers[-1:] + answers[:-1]
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(train))])
    for i, row in enumerate(train):
        assert _unpadded(batch["KL_input_ids"][i], batch["KL_attention_mask"][i]) == row["KL_prompt_ids"] + row["KL_completion_ids"]
        trained = _unpadded(batch["KL_input_ids"][i], batch["KL_completion_mask"][i])
        assert trained == row["KL_completion_ids"]
        assert _unpadded(batch["input_ids"][i], batch["attention_mask"][i]) == row["prompt_ids"] + row["completion_ids"]
    assert isinstance(trainer._get_train_sampler(), RandomSampler)
    result = trainer.train()
    assert trainer.state.global_step == 2 and math.isfinite(result.training_loss)


def test_kto_trl_pairs_stay_within_each_batch_of_rows_in_order(tiny_model, tmp_path):
    from torch.utils.data import SequentialSampler

    trainer, train = _kto_trainer(tiny_model, tmp_path, kto_kl_pairs="trl")
    assert "KL_prompt_ids" not in train.column_names
    rows = trainer.train_dataset
    answers = train["completion_ids"]
    # batches of 2: rows 0 and 1 swap answers, as 2 and 3 do; row 4, alone in its batch, gets its own
    assert rows["KL_completion_ids"] == [answers[1], answers[0], answers[3], answers[2], answers[4]]
    assert isinstance(trainer._get_train_sampler(), SequentialSampler)


# --- sft packing -------------------------------------------------------------------------------


def _packed_sft(tiny_model, tmp_path, neat: bool):
    """An SFT trainer on three conversations packed in one block (``sft_packing: llamafactory``)."""
    from fmtkit.sample import Sample, Turn
    from trainer_plugin.checks import fit_dataset
    from trainer_plugin.config import load_config
    from trainer_plugin.data import sft_row, to_dataset
    from trainer_plugin.run import load_tokenizer
    from trainer_plugin.stages import StageContext, get_stage

    cfg, _ = load_config(
        {"model_name_or_path": str(tiny_model), "dataset": "x", "output_dir": str(tmp_path / "o"), "template": "qwen3",
         "packing": True, "neat_packing": neat, "cutoff_len": 256}
    )  # fmt: skip
    stage = get_stage("sft")
    tokenizer = load_tokenizer(cfg, stage, echo=lambda _: None)
    rows = [sft_row(Sample(turns=[Turn("user", q), Turn("assistant", a)]))
            for q, a in [("Hi", "Hello there, friend."), ("Two plus two?", "Four."), ("Colour of the sky?", "Blue, mostly.")]]  # fmt: skip
    train, report = fit_dataset(cfg, stage, tokenizer, to_dataset(rows))
    assert report.sequences == 1 and len(train[0]["seq_lengths"]) == 4  # three samples and the padding
    ctx = StageContext(cfg, tokenizer, train, None, use_cpu=True, bf16=False, fp16=False, activation_checkpointing=False)
    return stage.build(ctx), train[0]


def _token_logps(model, ids, labels, **inputs):
    """The log-probability of each trained token, from the model's logits."""
    import torch

    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids]), **inputs).logits[0, :-1].float()
    targets = torch.tensor(labels[1:])
    trained = targets != IGNORE
    return logits.log_softmax(-1)[trained].gather(-1, targets[trained].unsqueeze(-1)).squeeze(-1)


@pytest.mark.parametrize("neat", [False, True])
def test_a_packed_block_attends_as_llamafactorys_packing_or_neat_packing(tiny_model, tmp_path, neat):
    """The trainer's loss on a block of three samples. ``neat_packing``: each sample attends to itself only,
    so the loss is that of the samples run one by one. Plain packing (LLaMA-Factory's ``packing: true``): a sample
    also attends to those before it in the block, with positions restarting at each sample: the loss of the
    block run with LLaMA-Factory's inputs (attention over the whole block, its ``position_ids``)."""
    import torch

    trainer, block = _packed_sft(tiny_model, tmp_path, neat)
    trainer.model.eval()
    batch = trainer.data_collator([trainer.train_dataset[0]])
    with torch.no_grad():
        loss = float(trainer.compute_loss(trainer.model, dict(batch)))
    lengths, ids, labels = block["seq_lengths"], block["input_ids"], block["labels"]
    starts = [sum(lengths[:i]) for i in range(len(lengths))]
    isolated = torch.cat([_token_logps(trainer.model, ids[s : s + n], labels[s : s + n])
                          for s, n in zip(starts[:-1], lengths[:-1], strict=True)])  # fmt: skip
    positions = [p for n in lengths[:-1] for p in range(n)] + [0] * lengths[-1]  # LLaMA-Factory's position_ids
    across = _token_logps(trainer.model, ids, labels, position_ids=torch.tensor([positions]), attention_mask=torch.ones(1, len(ids), dtype=torch.long))
    # attending across samples changes the second and third samples' log-probabilities on this model
    assert float((isolated - across).abs().max()) > 1e-2
    assert loss == pytest.approx(-float((isolated if neat else across).mean()), rel=1e-5, abs=1e-5)


def test_sft_runs_with_neat_packing(capsys, config):
    path, out = config(stage="sft", dataset="alpaca_sft,sharegpt_sft", neat_packing=True, cutoff_len=128)
    code, log = fmtkit(capsys, "train", path)
    assert code == 0, log
    summary = json.loads((out / "train_summary.json").read_text())
    warnings = summary["data_warnings"]
    assert summary["status"] == "completed" and summary["global_step"] == 2
    assert 1 <= warnings["packed_sequences"] < warnings["samples_trained"] == 16


def test_pref_ftx_that_a_stage_does_not_use_is_named():
    from trainer_plugin.config import load_config

    base = {"model_name_or_path": "m", "dataset": "d", "output_dir": "o", "pref_ftx": 0.1}
    _, notes = load_config({**base, "stage": "dpo", "pref_loss": "orpo", "orpo_sft_loss": "sequence"})
    assert any("pref_ftx is not used by orpo with orpo_sft_loss: sequence" in n for n in notes)
    for keys in ({"stage": "dpo"}, {"stage": "kto"}, {"stage": "dpo", "pref_loss": "orpo"}, {"stage": "dpo", "pref_loss": "simpo"}):
        assert not any("pref_ftx" in n for n in load_config({**base, **keys})[1])


def test_kto_pref_ftx_adds_llamafactorys_sft_term(tiny_model, tmp_path):
    """LLaMA-Factory's KTO (train/kto/trainer.py) adds ``ftx * mean(-avg_logp(desirable)) / n_desirable * batch``,
    ``avg_logp`` a desirable answer's mean token log-probability. The same trainer with and without ``pref_ftx``,
    on the same batch and weights: the losses differ by that term, computed from the model's own logits."""
    import torch

    losses = {}
    for ftx in (0.0, 0.7):
        torch.manual_seed(0)  # the same LoRA initialisation
        trainer, _ = _kto_trainer(tiny_model, tmp_path, pref_ftx=ftx)
        trainer.model.eval()
        batch = trainer.data_collator([trainer.train_dataset[i] for i in range(5)])
        with torch.no_grad():
            losses[ftx] = float(trainer.compute_loss(trainer.model, dict(batch)))
            logits = trainer.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()[:, :-1]
    answer = batch["completion_mask"][:, 1:]
    per_token = logits.log_softmax(-1).gather(-1, batch["input_ids"][:, 1:].unsqueeze(-1)).squeeze(-1) * answer
    desirable = (per_token.sum(-1) / answer.sum(-1))[batch["label"].bool()]  # rows 0, 2, 4
    term = 0.7 * float(-desirable.mean()) / len(desirable) * len(answer)
    assert len(desirable) == 3 and term > 1
    assert losses[0.7] - losses[0.0] == pytest.approx(term, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("keys", [{"stage": "kto", "dataset": "kto"}, {"stage": "sft", "dataset": "alpaca_sft", "packing": True}])
def test_pairs_and_blocks_with_evaluation_and_a_saved_tokenized_set(capsys, config, tmp_path, keys):
    """KTO's KL pairs and packed sft blocks go through evaluation (val_size) and tokenized_path: saved, then reloaded."""
    path, out = config(val_size=2, tokenized_path=str(tmp_path / "tok"), **keys)
    for said in ("tokenized set saved to", "loaded the tokenized set from"):
        code, log = fmtkit(capsys, "train", path)
        assert code == 0, log
        assert said in log, log
        summary = json.loads((out / "train_summary.json").read_text())
        assert summary["status"] == "completed" and math.isfinite(summary["eval_loss"])
    from datasets import load_from_disk

    saved = load_from_disk(str(tmp_path / "tok"))
    columns = {"KL_prompt_ids", "KL_completion_ids"} if keys["stage"] == "kto" else {"seq_lengths"}
    assert columns <= set(saved["train"].column_names) and columns <= set(saved["validation"].column_names)
