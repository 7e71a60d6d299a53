"""Supervised fine-tuning: TRL's ``SFTTrainer`` on conversational ``messages`` rows.

The loss covers the assistant turns only (TRL's ``assistant_only_loss``), which
needs a chat template with ``{% generation %}`` markers; ``train_on_prompt:
true`` trains on every token instead. ``packing: true`` packs examples with
TRL's best-fit-decreasing strategy.
"""

from __future__ import annotations

from trainer_plugin.data import sft_row
from trainer_plugin.stages.base import Stage, StageContext


def build_sft_trainer(ctx: StageContext, assistant_only: bool, packing: bool, packing_strategy: str):
    """An ``SFTTrainer`` for language-modelling rows (``messages`` or ``text``); shared with stage pt."""
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        **ctx.training_args(),
        assistant_only_loss=assistant_only,
        packing=packing,
        packing_strategy=packing_strategy,
    )
    return ctx.trainer(SFTTrainer, args)


def build(ctx: StageContext):
    return build_sft_trainer(
        ctx, assistant_only=not ctx.config.train_on_prompt, packing=ctx.config.use_packing, packing_strategy="bfd"
    )


STAGE = Stage(name="sft", data_stage="sft", to_row=sft_row, build=build, description="supervised fine-tuning")
