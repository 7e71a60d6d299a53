"""ORPO (``stage: dpo`` + ``pref_loss: orpo``): TRL's experimental ``ORPOTrainer``.

No reference model; ``pref_beta`` is ORPO's lambda (weight of the odds-ratio
term beside the SFT loss).
"""

from __future__ import annotations

import os

from trainer_plugin.data import preference_row
from trainer_plugin.stages.base import Stage, StageContext


def build(ctx: StageContext):
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    args = ORPOConfig(
        **ctx.training_args(count_tokens=False),
        beta=ctx.config.pref_beta,
        remove_unused_columns=False,  # ORPO's collator needs its own columns
    )
    return ORPOTrainer(
        model=ctx.config.model_name_or_path,
        args=args,
        train_dataset=ctx.train_dataset,
        eval_dataset=ctx.eval_dataset,
        processing_class=ctx.tokenizer,
        peft_config=ctx.lora("CAUSAL_LM"),
        callbacks=ctx.callbacks,
    )


STAGE = Stage(
    name="orpo",
    data_stage="dpo",
    to_row=preference_row,
    build=build,
    token_columns=("chosen_input_ids", "rejected_input_ids"),
    description="ORPO",
)
