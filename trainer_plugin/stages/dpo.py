"""Direct preference optimisation: TRL's ``DPOTrainer`` on explicit-prompt preference rows.

``pref_loss`` picks the loss (sigmoid = DPO, hinge, ipo), ``pref_beta`` its
beta, ``pref_ftx`` adds an SFT loss on the chosen answer with that weight,
averaged as LLaMA-Factory averages it (``pref_ftx_average: sample``: each answer's
mean token NLL, then the mean over the pairs, :func:`per_pair_sft`) or as TRL's
``sft`` loss does (``token``: the mean over every chosen answer token of the batch).
With LoRA the reference model is the base model with the adapter switched off;
with full fine-tuning TRL loads a frozen copy.
"""

from __future__ import annotations

from trainer_plugin.data import preference_row
from trainer_plugin.stages.base import Stage, StageContext, answer_mean_logps, trained_positions_on_cpu, with_added_loss


def per_pair_sft(trainer_class: type, weight: float) -> type:
    """``trainer_class`` (TRL's ``DPOTrainer``) adding ``weight`` times LLaMA-Factory's SFT term to its loss:
    minus each chosen answer's mean token log-probability, averaged over the pairs.

    The answers' log-probabilities are those of the policy's forward pass (:func:`answer_mean_logps`).
    """

    class DPOTrainer(trainer_class):  # type: ignore[misc, valid-type]
        def _compute_loss(self, model, inputs, return_outputs):
            compute = lambda: super(DPOTrainer, self)._compute_loss(model, inputs, return_outputs)  # noqa: E731
            result, means = answer_mean_logps(model, inputs, compute)
            chosen, _ = means.chunk(2, dim=0)  # the batch is [chosen, rejected]
            return with_added_loss(result, weight * -chosen.mean(), return_outputs)

    DPOTrainer.__name__ = DPOTrainer.__qualname__ = trainer_class.__name__
    return DPOTrainer


def build(ctx: StageContext):
    from trl import DPOConfig, DPOTrainer

    c = ctx.config
    losses, weights, trainer_class = [c.pref_loss], None, DPOTrainer
    if c.pref_ftx > 0 and c.pref_ftx_average == "token":
        losses, weights = [c.pref_loss, "sft"], [1.0, c.pref_ftx]
    elif c.pref_ftx > 0:
        trainer_class = per_pair_sft(DPOTrainer, c.pref_ftx)
    args = DPOConfig(
        **ctx.preference_args(), loss_type=losses, loss_weights=weights, label_smoothing=c.dpo_label_smoothing
    )
    return trained_positions_on_cpu(ctx.trainer(trainer_class, args), ctx.use_cpu)


STAGE = Stage(name="dpo", data_stage="dpo", to_row=preference_row, build=build, description="DPO")
