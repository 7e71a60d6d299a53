"""ORPO (``stage: dpo`` + ``pref_loss: orpo``): TRL's experimental ``ORPOTrainer``.

No reference model; ``pref_beta`` is ORPO's lambda (weight of the odds-ratio
term beside the SFT loss).
"""

from __future__ import annotations

from trainer_plugin.data import preference_row
from trainer_plugin.stages.base import Stage, StageContext, experimental_pair_trainer, experimental_trl


def build(ctx: StageContext):
    orpo = experimental_trl("orpo")
    args = orpo.ORPOConfig(**ctx.preference_args(collator_columns=True))
    return experimental_pair_trainer(ctx, orpo.ORPOTrainer, args, nll_on_prompt=True)  # ORPO's SFT term: prompt too


STAGE = Stage(
    name="orpo",
    data_stage="dpo",
    to_row=preference_row,
    build=build,
    token_columns=("chosen_input_ids", "rejected_input_ids"),
    description="ORPO",
)
