"""Direct preference optimisation: TRL's ``DPOTrainer`` on explicit-prompt preference rows.

``pref_loss`` picks the loss (sigmoid = DPO, hinge, ipo), ``pref_beta`` its
beta, ``pref_ftx`` adds an SFT loss on the chosen answer with that weight.
With LoRA the reference model is the base model with the adapter switched off;
with full fine-tuning TRL loads a frozen copy.
"""

from __future__ import annotations

from trainer_plugin.data import preference_row
from trainer_plugin.stages.base import Stage, StageContext, trained_positions_on_cpu


def build(ctx: StageContext):
    from trl import DPOConfig, DPOTrainer

    c = ctx.config
    losses, weights = [c.pref_loss], None
    if c.pref_ftx > 0:
        losses, weights = [c.pref_loss, "sft"], [1.0, c.pref_ftx]
    args = DPOConfig(
        **ctx.preference_args(), loss_type=losses, loss_weights=weights, label_smoothing=c.dpo_label_smoothing
    )
    return trained_positions_on_cpu(ctx.trainer(DPOTrainer, args), ctx.use_cpu)


STAGE = Stage(name="dpo", data_stage="dpo", to_row=preference_row, build=build, description="DPO")
