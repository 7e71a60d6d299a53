"""SimPO (``stage: dpo`` + ``pref_loss: simpo``): TRL's experimental ``CPOTrainer`` with ``loss_type="simpo"``.

No reference model; ``pref_beta`` is SimPO's beta, ``simpo_gamma`` its target
margin, and ``pref_ftx`` the weight of an added SFT loss (CPO's ``cpo_alpha``;
0 is pure SimPO).
"""

from __future__ import annotations

import os

from trainer_plugin.data import preference_row
from trainer_plugin.stages.base import Stage, StageContext


def build(ctx: StageContext):
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    c = ctx.config
    args = CPOConfig(
        **ctx.training_args(count_tokens=False),
        loss_type="simpo",
        beta=c.pref_beta,
        simpo_gamma=c.simpo_gamma,
        cpo_alpha=c.pref_ftx,
        remove_unused_columns=False,  # CPO's collator needs its own columns
    )
    return CPOTrainer(
        model=c.model_name_or_path,
        args=args,
        train_dataset=ctx.train_dataset,
        eval_dataset=ctx.eval_dataset,
        processing_class=ctx.tokenizer,
        peft_config=ctx.lora("CAUSAL_LM"),
        callbacks=ctx.callbacks,
    )


STAGE = Stage(
    name="simpo",
    data_stage="dpo",
    to_row=preference_row,
    build=build,
    token_columns=("chosen_input_ids", "rejected_input_ids"),
    description="SimPO",
)
