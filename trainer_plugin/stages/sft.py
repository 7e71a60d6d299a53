"""Supervised fine-tuning: TRL's ``SFTTrainer`` on conversational ``messages`` rows.

The loss covers the assistant turns only (TRL's ``assistant_only_loss``), which
needs a chat template with ``{% generation %}`` markers; ``train_on_prompt:
true`` trains on every token instead. ``packing: true`` packs examples as
LLaMA-Factory does (``sft_packing: llamafactory``: fmtkit packs the token ids,
:func:`packed_blocks`) or with TRL's best-fit-decreasing strategy (``trl``).

The loss is the model's own (``model(labels=...)``, as transformers' Trainer
and LLaMA-Factory compute it): TRL's SFT loss path also computes, at every
step, the entropy and the top-1 accuracy of every position over the whole
vocabulary for its logs, which nobody asked for and which cost most of a
step on the CPU. The loss value is the same (the mean over the trained
tokens of the batch, or of the accumulated batches).
"""

from __future__ import annotations

from trainer_plugin.data import sft_row
from trainer_plugin.stages.base import Stage, StageContext, trained_positions_on_cpu

PLAIN_LOSS = True  # False: TRL's own loss path with its per-step metrics (bench/bench_train.py compares both)


def plain_loss_trainer(trainer_class):
    """``trainer_class`` (TRL's ``SFTTrainer``) computing its loss with the model's own forward, no extra metrics.

    TRL's path is kept where it does more than the plain loss: a custom loss function, label
    smoothing, a loss type other than nll, MoE auxiliary losses. On the CPU (where
    :func:`~trainer_plugin.stages.base.trained_positions_on_cpu` applies) the LM head projects only
    the positions whose next token is trained: the same loss and gradients, without the prompt's logits.
    """
    class SFTTrainer(trainer_class):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            plain = (
                self.compute_loss_func is None
                and self.label_smoother is None
                and self.args.loss_type == "nll"
                and not self.aux_loss_enabled
            )
            if not plain:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            inputs["use_cache"] = False
            if getattr(self, "trained_positions", False) and not return_outputs:  # evaluation keeps the logits
                inputs.update(fused_lm_head=True, loss_only=True)
            # transformers' Trainer.compute_loss: the one after TRL's in the method order
            return super(trainer_class, self).compute_loss(model, inputs, return_outputs, num_items_in_batch)

    return SFTTrainer


def build_sft_trainer(ctx: StageContext, assistant_only: bool, packing: bool, packing_strategy: str):
    """An ``SFTTrainer`` for language-modelling rows (``messages`` or ``text``); shared with stage pt."""
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        **ctx.training_args(),
        assistant_only_loss=assistant_only,
        packing=packing,
        packing_strategy=packing_strategy,
    )
    if not PLAIN_LOSS:
        return ctx.trainer(SFTTrainer, args)
    return trained_positions_on_cpu(ctx.trainer(plain_loss_trainer(SFTTrainer), args), ctx.use_cpu)


def packed_blocks(trainer, neat: bool):
    """``trainer`` fed blocks packed by fmtkit (``sft_packing: llamafactory``, :func:`~trainer_plugin.encode.pack_sft`).

    Positions restart at each sample of a block (from its ``seq_lengths``), as LLaMA-Factory's
    ``position_ids``. Without ``neat`` the attention mask covers the whole block, so a sample attends
    to those before it (LLaMA-Factory's ``packing``); with it there is no mask, and transformers
    then confines each sample's attention to itself from the restarting positions (``neat_packing``).
    """
    collate = trainer.data_collator
    collate.return_position_ids = True
    if neat:
        def without_mask(examples):
            batch = collate(examples)
            batch.pop("attention_mask", None)
            return batch

        trainer.data_collator = without_mask
    return trainer


def build(ctx: StageContext):
    # Token-id rows carry their labels already: the loss mask is in them.
    assistant_only = not ctx.config.train_on_prompt and not ctx.tokenized
    if ctx.tokenized and "seq_lengths" in ctx.train_dataset.column_names:  # blocks packed by fmtkit
        trainer = build_sft_trainer(ctx, assistant_only=False, packing=False, packing_strategy="bfd")
        return packed_blocks(trainer, ctx.config.neat_packing)
    return build_sft_trainer(ctx, assistant_only=assistant_only, packing=ctx.config.use_packing, packing_strategy="bfd")


STAGE = Stage(name="sft", data_stage="sft", to_row=sft_row, build=build, description="supervised fine-tuning")
