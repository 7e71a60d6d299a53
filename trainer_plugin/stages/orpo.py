"""ORPO (``stage: dpo`` + ``pref_loss: orpo``): TRL's experimental ``ORPOTrainer``.

No reference model; ``pref_beta`` is ORPO's lambda (weight of the odds-ratio
term beside the SFT loss). The SFT term (``orpo_sft_loss``) is LLaMA-Factory's by
default: minus the mean log-probability of each chosen *answer*, averaged over the
pairs, so a pair's loss is ``-logp(chosen) - lambda * logsigmoid(log_odds)`` with
``logp`` the answer's mean token log-probability; ``pref_ftx`` adds that many times
the SFT term again, as LLaMA-Factory does. ``orpo_sft_loss: sequence`` keeps
TRL's: the cross-entropy over every token of the chosen sequences, prompt included
(and no ``pref_ftx``: TRL's ORPO has none).
"""

from __future__ import annotations

from trainer_plugin.data import preference_row
from trainer_plugin.stages.base import Stage, StageContext, experimental_pair_trainer, experimental_trl


def build(ctx: StageContext):
    orpo = experimental_trl("orpo")
    args = orpo.ORPOConfig(**ctx.preference_args(collator_columns=True))
    c = ctx.config
    weight = 1 + c.pref_ftx  # LLaMA-Factory adds pref_ftx times the same SFT term (orpo_sft_loss: answer only)
    return experimental_pair_trainer(ctx, orpo.ORPOTrainer, args, orpo_sft=c.orpo_sft_loss, sft_weight=weight)


STAGE = Stage(
    name="orpo",
    data_stage="dpo",
    to_row=preference_row,
    build=build,
    token_columns=("chosen_input_ids", "rejected_input_ids"),
    description="ORPO",
)
