"""KTO: TRL's ``KTOTrainer`` on unpaired rows (prompt, completion, boolean label).

``pref_beta`` is KTO's beta; ``kto_chosen_weight`` / ``kto_rejected_weight``
weigh desirable / undesirable examples; ``pref_ftx`` adds LLaMA-Factory's SFT term
on the desirable answers (:func:`with_sft_term`). KTO's KL term needs at least two
examples per batch (the config raises a batch size of 1 to 2).

The KL term's mismatched pairs (``kto_kl_pairs``): LLaMA-Factory's by default,
made when the rows are encoded (each prompt with the answer of the row before
it, :func:`trainer_plugin.data.with_kl_answers`; the pair cut as a sample
is), so the rows can be shuffled as LLaMA-Factory shuffles them
(:func:`with_own_kl_pairs`); ``trl``: TRL's, within each batch of rows taken in order.
"""

from __future__ import annotations

from trainer_plugin.data import kto_row
from trainer_plugin.encode import KL_PROMPT
from trainer_plugin.stages.base import Stage, StageContext, answer_mean_logps, trained_positions_on_cpu, with_added_loss


def with_own_kl_pairs(trainer_class: type) -> type:
    """``trainer_class`` (TRL's ``KTOTrainer``) taking each row's KL pair from its ``KL_prompt_ids`` and
    ``KL_completion_ids`` (TRL's collator pairs ``prompt_ids`` with ``KL_completion_ids``), the rows shuffled.

    TRL reads the rows in order because it pairs them within each batch; a pair made per row allows
    transformers' random sampler, which LLaMA-Factory's KTO trainer uses.
    """

    class KTOTrainer(trainer_class):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            collate = self.data_collator

            def with_kl_prompts(examples):
                if KL_PROMPT not in examples[0]:
                    return collate(examples)
                batch = collate([{k: v for k, v in e.items() if k != KL_PROMPT} for e in examples])
                kl = collate([{"prompt_ids": e[KL_PROMPT], "completion_ids": e["KL_completion_ids"], "label": e["label"]} for e in examples])
                batch.update({f"KL_{key}": kl[key] for key in ("input_ids", "attention_mask", "completion_mask")})
                return batch

            self.data_collator = with_kl_prompts
            self.args.train_sampling_strategy = "random"

        def _set_signature_columns_if_needed(self):
            super()._set_signature_columns_if_needed()
            if KL_PROMPT not in self._signature_columns:
                self._signature_columns.append(KL_PROMPT)

    return KTOTrainer


def with_sft_term(trainer_class: type, weight: float) -> type:
    """``trainer_class`` (TRL's ``KTOTrainer``) adding LLaMA-Factory's ``pref_ftx`` term to its loss: ``weight``
    times minus the desirable answers' mean token log-probability, averaged over them, times the batch
    size over their count (LLaMA-Factory's scaling); nothing for a batch without a desirable answer."""

    class KTOTrainer(trainer_class):  # type: ignore[misc, valid-type]
        def _compute_loss(self, model, inputs, return_outputs):
            compute = lambda: super(KTOTrainer, self)._compute_loss(model, inputs, return_outputs)  # noqa: E731
            result, means = answer_mean_logps(model, inputs, compute)
            desirable = means[inputs["label"].bool()]
            if not len(desirable):
                return result
            return with_added_loss(result, weight * -desirable.mean() / len(desirable) * len(means), return_outputs)

    return KTOTrainer


def build(ctx: StageContext):
    from trl import KTOConfig, KTOTrainer

    c = ctx.config
    args = KTOConfig(
        **ctx.preference_args(), desirable_weight=c.kto_chosen_weight, undesirable_weight=c.kto_rejected_weight
    )
    trainer_class = KTOTrainer
    if ctx.tokenized and KL_PROMPT in ctx.train_dataset.column_names:  # kto_kl_pairs: llamafactory
        trainer_class = with_own_kl_pairs(trainer_class)
    if c.pref_ftx > 0:
        trainer_class = with_sft_term(trainer_class, c.pref_ftx)
    return trained_positions_on_cpu(ctx.trainer(trainer_class, args), ctx.use_cpu)


STAGE = Stage(name="kto", data_stage="kto", to_row=kto_row, build=build, description="KTO")
