"""Continued pretraining: SFT on ``text`` rows, packed into ``cutoff_len`` blocks.

TRL has no pretraining trainer; like LLaMA-Factory's pt stage, texts are
concatenated (each ending with EOS) and cut into blocks of ``cutoff_len``
tokens (TRL's ``wrapped`` packing), and every token is trained.
"""

from __future__ import annotations

from trainer_plugin.data import pt_row
from trainer_plugin.stages.base import Stage, StageContext
from trainer_plugin.stages.sft import build_sft_trainer


def build(ctx: StageContext):
    packing = ctx.config.use_packing and not ctx.tokenized  # token-id rows come packed (trainer_plugin.encode)
    return build_sft_trainer(ctx, assistant_only=False, packing=packing, packing_strategy="wrapped")


STAGE = Stage(
    name="pt", data_stage="pt", to_row=pt_row, build=build, conversational=False, description="continued pretraining"
)
