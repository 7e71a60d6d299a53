"""KTO: TRL's ``KTOTrainer`` on unpaired rows (prompt, completion, boolean label).

``pref_beta`` is KTO's beta; ``kto_chosen_weight`` / ``kto_rejected_weight``
weigh desirable / undesirable examples. KTO's KL term needs at least two
examples per batch (the config raises a batch size of 1 to 2).
"""

from __future__ import annotations

from trainer_plugin.data import kto_row
from trainer_plugin.stages.base import Stage, StageContext, trained_positions_on_cpu


def build(ctx: StageContext):
    from trl import KTOConfig, KTOTrainer

    c = ctx.config
    args = KTOConfig(
        **ctx.preference_args(), desirable_weight=c.kto_chosen_weight, undesirable_weight=c.kto_rejected_weight
    )
    return trained_positions_on_cpu(ctx.trainer(KTOTrainer, args), ctx.use_cpu)


STAGE = Stage(name="kto", data_stage="kto", to_row=kto_row, build=build, description="KTO")
