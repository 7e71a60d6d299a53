"""Reward modelling: TRL's ``RewardTrainer`` on preference rows.

The base model is loaded as a sequence classifier with one output (the
reward); with LoRA the adapter's task type is ``SEQ_CLS``, so the new score
head is trained fully and saved with the adapter.
"""

from __future__ import annotations

from trainer_plugin.data import preference_row
from trainer_plugin.stages.base import Stage, StageContext


def build(ctx: StageContext):
    from trl import RewardConfig, RewardTrainer

    return ctx.trainer(RewardTrainer, RewardConfig(**ctx.training_args()), task_type="SEQ_CLS")


STAGE = Stage(name="rm", data_stage="rm", to_row=preference_row, build=build, description="reward modelling")
