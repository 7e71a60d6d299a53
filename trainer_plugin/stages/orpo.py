"""ORPO (``stage: dpo`` + ``pref_loss: orpo``): TRL's experimental ``ORPOTrainer``.

No reference model; ``pref_beta`` is ORPO's lambda (weight of the odds-ratio
term beside the SFT loss).
"""

from __future__ import annotations

from trainer_plugin.data import preference_row
from trainer_plugin.stages.base import Stage, StageContext, experimental_trl, keeping_the_template_stop


def build(ctx: StageContext):
    orpo = experimental_trl("orpo")
    return ctx.trainer(keeping_the_template_stop(orpo.ORPOTrainer), orpo.ORPOConfig(**ctx.preference_args(collator_columns=True)))


STAGE = Stage(
    name="orpo",
    data_stage="dpo",
    to_row=preference_row,
    build=build,
    token_columns=("chosen_input_ids", "rejected_input_ids"),
    description="ORPO",
)
