"""SimPO (``stage: dpo`` + ``pref_loss: simpo``): TRL's experimental ``CPOTrainer`` with ``loss_type="simpo"``.

No reference model; ``pref_beta`` is SimPO's beta, ``simpo_gamma`` its target
margin, and ``pref_ftx`` the weight of an added SFT loss (CPO's ``cpo_alpha``;
0 is pure SimPO). The SFT term (``pref_ftx_average``) is LLaMA-Factory's by default:
minus each chosen answer's mean token log-probability, averaged over the pairs;
``token`` keeps TRL's: the cross-entropy over every chosen answer token of the batch.
"""

from __future__ import annotations

from trainer_plugin.data import preference_row
from trainer_plugin.stages.base import Stage, StageContext, experimental_pair_trainer, experimental_trl


def build(ctx: StageContext):
    cpo = experimental_trl("cpo")
    c = ctx.config
    args = cpo.CPOConfig(
        **ctx.preference_args(collator_columns=True), loss_type="simpo", simpo_gamma=c.simpo_gamma, cpo_alpha=c.pref_ftx
    )
    per_pair = c.pref_ftx > 0 and c.pref_ftx_average == "sample"
    return experimental_pair_trainer(ctx, cpo.CPOTrainer, args, sft_per_pair=per_pair)


STAGE = Stage(
    name="simpo",
    data_stage="dpo",
    to_row=preference_row,
    build=build,
    token_columns=("chosen_input_ids", "rejected_input_ids"),
    description="SimPO",
)
