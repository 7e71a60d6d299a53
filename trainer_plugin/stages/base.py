"""The core every stage shares: what a stage is, and the arguments all trainers get.

A stage module (``sft.py``, ``dpo.py``, ...) defines one :class:`Stage`: the
function that maps a sample to its TRL row, the stage name the validator
checks the data for, and ``build``, which makes the TRL trainer from a
:class:`StageContext`. ``build`` adds only what is particular to the stage
(its TRL classes and loss options); everything else comes from here:

- :meth:`StageContext.training_args`: the ``*Config`` arguments every stage shares;
- :meth:`StageContext.preference_args`: those plus what every preference stage shares;
- :meth:`StageContext.trainer`: the trainer, with model, data, tokenizer, LoRA and callbacks;
- :func:`experimental_trl`: a module of ``trl.experimental`` (ORPO, CPO).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fmtkit.errors import FmtkitError, first_line
from fmtkit.models.vision import is_processor
from trainer_plugin.config import TrainConfig
from trainer_plugin.data import RowFunction

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase, Trainer


@dataclass
class StageContext:
    """What a stage's ``build`` gets: the config, tokenizer, data and the device decisions."""

    config: TrainConfig
    tokenizer: PreTrainedTokenizerBase
    train_dataset: Dataset
    eval_dataset: Dataset | None
    use_cpu: bool
    bf16: bool
    fp16: bool
    activation_checkpointing: bool
    callbacks: list[Any] = field(default_factory=list)
    progress_bar: bool = False  # the Trainer's live bar (a terminal); else trainer_plugin.progress prints lines

    def training_args(self, count_tokens: bool = True) -> dict[str, Any]:
        """Keyword arguments common to every TRL ``*Config`` (all are TrainingArguments subclasses)."""
        c = self.config
        has_eval = self.eval_dataset is not None
        warmup: float | int = c.warmup_steps if c.warmup_steps > 0 else c.warmup_ratio
        return dict(
            output_dir=c.output_dir,
            learning_rate=c.learning_rate,
            num_train_epochs=c.num_train_epochs,
            max_steps=c.max_steps,
            per_device_train_batch_size=c.per_device_train_batch_size,
            per_device_eval_batch_size=c.per_device_eval_batch_size,
            gradient_accumulation_steps=c.gradient_accumulation_steps,
            lr_scheduler_type=c.lr_scheduler_type,
            warmup_steps=warmup,
            weight_decay=c.weight_decay,
            max_grad_norm=c.max_grad_norm,
            optim=c.optim,
            bf16=self.bf16,
            fp16=self.fp16,
            use_cpu=self.use_cpu,
            activation_checkpointing=self.activation_checkpointing,
            logging_steps=c.logging_steps,
            save_strategy=c.save_strategy,
            save_steps=c.save_steps,
            save_total_limit=c.save_total_limit,
            eval_strategy=c.eval_strategy if has_eval else "no",
            eval_steps=c.eval_steps,
            seed=c.seed,
            deepspeed=c.deepspeed,
            ddp_find_unused_parameters=(
                c.ddp_find_unused_parameters
                if c.ddp_find_unused_parameters is not None or c.finetuning_type != "lora"
                else False
            ),
            max_length=c.cutoff_len,
            model_init_kwargs={"dtype": self.model_dtype},
            report_to=c.trackers or "none",
            run_name=c.run_name,
            logging_nan_inf_filter=False,  # a NaN loss is logged as NaN, not replaced by an average
            disable_tqdm=not self.progress_bar,
            dataloader_pin_memory=not self.use_cpu,
            include_num_input_tokens_seen="non_padding" if count_tokens else "no",
        )

    def preference_args(self, collator_columns: bool = False) -> dict[str, Any]:
        """:meth:`training_args` plus ``beta`` (``pref_beta``), shared by DPO, KTO, ORPO and SimPO.

        ``collator_columns``: the trainer's collator reads tokenized columns of its own (TRL's
        experimental ORPO and CPO), so they must not be removed, and TRL cannot count tokens seen
        (the stage names ``token_columns`` instead).
        """
        args = self.training_args(count_tokens=not collator_columns)
        args["beta"] = self.config.pref_beta
        if collator_columns:
            args["remove_unused_columns"] = False
        return args

    @property
    def tokenized(self) -> bool:
        """The rows carry token ids, cut by fmtkit (``truncation: llamafactory``, :mod:`trainer_plugin.encode`)."""
        from trainer_plugin.encode import is_tokenized

        return is_tokenized(self.train_dataset)

    def trainer(self, trainer_class: type[Trainer], args: Any, task_type: str = "CAUSAL_LM") -> Trainer:
        """``trainer_class`` on the run's model, data, tokenizer, LoRA (of ``task_type``) and callbacks."""
        if self.tokenized:
            from trainer_plugin.encode import accepting_tokenized

            trainer_class = accepting_tokenized(trainer_class)
        try:
            return trainer_class(
                model=self.config.model_name_or_path,
                args=args,
                train_dataset=self.train_dataset,
                eval_dataset=self.eval_dataset,
                processing_class=self.tokenizer,
                peft_config=self.lora(task_type),
                callbacks=self.callbacks,
            )
        except ValueError as exc:
            if "Target modules" not in str(exc):  # peft's NoMatchingPeftModuleError is a ValueError
                raise
            raise FmtkitError(f"lora_target {self.config.lora_target!r} matches no module of the model: {first_line(exc)}; "
                              "use `all` or names such as q_proj,v_proj") from None  # fmt: skip

    @property
    def model_dtype(self) -> str:
        # As LLaMA-Factory: a LoRA base model is loaded in the compute dtype; fully trained weights stay float32.
        if self.config.finetuning_type == "lora" and (self.bf16 or self.fp16):
            return "bfloat16" if self.bf16 else "float16"
        return "float32"

    def lora(self, task_type: str = "CAUSAL_LM") -> Any:
        """The peft ``LoraConfig`` of the run, or None for full fine-tuning."""
        c = self.config
        if c.finetuning_type != "lora":
            return None
        from peft import LoraConfig

        targets = [t.strip() for t in c.lora_target.split(",") if t.strip()]
        extra = [t.strip() for t in (c.additional_target or "").split(",") if t.strip()]
        modules: str | list[str] = "all-linear" if targets in ([], ["all"]) else targets
        if is_processor(self.tokenizer):  # a VLM: not its frozen vision parts (trainer_plugin.vision)
            from trainer_plugin.vision import lora_targets

            modules = lora_targets(c, targets)
        return LoraConfig(
            r=c.lora_rank,
            lora_alpha=c.resolved_lora_alpha,
            lora_dropout=c.lora_dropout,
            target_modules=modules,
            modules_to_save=extra or None,
            use_rslora=c.use_rslora,
            use_dora=c.use_dora,
            task_type=task_type,
        )


def keeping_the_template_stop(trainer_class: type[Trainer]) -> type[Trainer]:
    """``trainer_class`` (TRL's experimental ORPO or CPO trainer) without the EOS it appends to an answer that has a stop token.

    Those trainers append EOS to every answer whose last token is not EOS, so a chat template's
    answer ending ``<|im_end|>\\n`` trained ``<|im_end|>\\n<|im_end|>``. The answer keeps its
    own stop token (:func:`trainer_plugin.fit.stop_ids`); an answer without one still gets EOS.
    """
    from trainer_plugin.fit import stop_ids

    class Trainer(trainer_class):  # type: ignore[misc, valid-type]
        def tokenize_row(self, feature, model=None):
            batch = super().tokenize_row(feature, model)
            if getattr(self, "_stops", None) is None:
                self._stops = stop_ids(self.processing_class)
            stops = self._stops
            for side in ("chosen", "rejected"):
                answer = self.build_tokenized_answer(feature["prompt"], feature[side])["input_ids"]
                kept = sum(1 for label in batch[f"{side}_labels"] if label != -100)
                if stops.intersection(answer) and kept > len(answer):  # the appended EOS survived truncation
                    for key in ("input_ids", "attention_mask", "labels"):
                        batch[f"{side}_{key}"] = batch[f"{side}_{key}"][:-1]
            return batch

    Trainer.__name__ = Trainer.__qualname__ = trainer_class.__name__
    return Trainer


SCALED_LOGITS = ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier", "logits_scaling")


def trained_positions_on_cpu(trainer: Trainer, use_cpu: bool) -> Trainer:
    """On the CPU, TRL's per-token fields (DPO, KTO; ORPO and CPO through :func:`on_trained_positions`) from the LM head
    applied to the trained positions only.

    TRL patches the model with a fused LM head that, off a Triton GPU, scores every position
    tile by tile: prompt and padding too, about 3x the time of one full-logits pass on the CPU.
    LLaMA-Factory scores every position in one pass. Here the model's backbone runs as usual
    and its LM head projects only the positions whose next token is trained (the answer: a
    fraction of the sequence), in one matrix product, as TRL does on a Triton GPU. Prompt and
    padding positions count 0 in TRL's loss and metrics, so the log-probabilities, loss and
    metrics (entropy, mean logits, top-1) are the same. The reference pass (no gradient while
    training) computes the log-probabilities only: its other fields feed no metric.
    ``every_mean_logit=True`` (ORPO, CPO): the mean logit of every position instead of those metrics.
    ``loss_only=True`` (SFT, pretraining: :func:`~trainer_plugin.stages.sft.plain_loss_trainer`): the
    loss alone, with the model's own cross-entropy and reduction (``num_items_in_batch`` included).
    GPUs, MoE models and models whose logits are scaled or soft-capped keep TRL's head.
    """
    if not use_cpu:
        return trainer
    import types

    import torch
    from peft import PeftModel
    from transformers.loss.loss_utils import fixed_cross_entropy
    from transformers.modeling_outputs import CausalLMOutput
    from trl.trainer.utils import FusedCausalLMOutput

    def forward(
        self, *args, fused_lm_head=False, labels=None, shift_labels=None, num_items_in_batch=None, every_mean_logit=False,
        loss_only=False, **kwargs,
    ):  # fmt: skip
        if not fused_lm_head:
            return trl_forward[id(self)](
                *args, labels=labels, shift_labels=shift_labels, num_items_in_batch=num_items_in_batch, **kwargs
            )
        kwargs["use_cache"] = False
        hidden = hidden_all = self.base_model(*args, **kwargs).last_hidden_state
        if shift_labels is None:
            hidden, labels = hidden[:, :-1], labels[:, 1:]
        else:
            labels = shift_labels
        mask = labels != -100
        targets = labels[mask]
        logits = self.get_output_embeddings()(hidden[mask]).float()  # (trained positions, vocabulary)
        if loss_only:  # transformers' ForCausalLMLoss on the trained positions
            return CausalLMOutput(loss=fixed_cross_entropy(logits, targets, num_items_in_batch))
        log_probs_all = logits.log_softmax(-1)
        log_probs = log_probs_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)

        def per_token(values):  # back to (batch, positions), 0 where nothing is trained (as TRL's head)
            return values.new_zeros(mask.shape).masked_scatter(mask, values)

        entropy = mean_logits = is_top1 = None
        if every_mean_logit:  # ORPO / CPO: the mean logit of every position (vocabulary mean of h.W + b = h.mean(W) + mean(b))
            with torch.no_grad():
                head = self.get_output_embeddings()
                mean_row = head.weight.float().mean(0)
                mean_logits = hidden_all.float() @ mean_row + (head.bias.float().mean() if head.bias is not None else 0)
        elif torch.is_grad_enabled() or not self.training:  # not the reference pass of training: the metrics need them
            with torch.no_grad():
                entropy = per_token(-(log_probs_all.exp() * log_probs_all).sum(-1))
                mean_logits = per_token(logits.mean(-1))
                is_top1 = per_token(logits.argmax(-1) == targets)
        loss = -log_probs.sum() / (mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch)
        return FusedCausalLMOutput(
            loss=loss, log_probs=per_token(log_probs), entropy=entropy, mean_logits=mean_logits, is_top1=is_top1,
            label_mask=mask,
        )  # fmt: skip

    trl_forward: dict[int, Any] = {}
    policy = trainer.model.get_base_model() if isinstance(trainer.model, PeftModel) else trainer.model
    for model in (policy, getattr(trainer, "ref_model", None)):
        text_config = None if model is None else model.config.get_text_config()
        if text_config is None or getattr(text_config, "output_router_logits", False):
            continue
        if any(getattr(text_config, name, None) not in (None, 1.0) for name in SCALED_LOGITS):
            continue
        trl_forward[id(model)] = model.forward
        model.forward = types.MethodType(forward, model)
    trainer.trained_positions = id(policy) in trl_forward  # read by on_trained_positions
    return trainer


def on_trained_positions(trainer_class: type[Trainer], orpo_sft: str | None) -> type[Trainer]:
    """``trainer_class`` (TRL's experimental ORPO or CPO trainer) scoring, on the CPU, only the positions its loss reads.

    TRL's ``concatenated_forward`` takes the full logits of chosen and rejected, copies them and
    runs a log-softmax over the whole vocabulary twice (the SFT term, then the answers' log-probs).
    With :func:`trained_positions_on_cpu` applied, one pass of the LM head scores only the positions
    a term reads: the answers, and the chosen sequence's SFT positions (ORPO with ``orpo_sft="sequence"``:
    the prompt too; ``"answer"``: none more, :func:`answer_only_sft` computes that term from the answers'
    log-probabilities; CPO, ``None``: the chosen answer, when ``cpo_alpha`` weighs it). The same
    log-probabilities, hence the same losses; the logged mean logits come from each position's
    mean over the vocabulary (the hidden state times the LM head's mean row), as TRL averages them.
    A model in 16-bit precision keeps TRL's path (its log-softmax would run in 16 bits there).
    """
    import torch

    orpo, on_prompt = orpo_sft is not None, orpo_sft == "sequence"

    class Trainer(trainer_class):  # type: ignore[misc, valid-type]
        def concatenated_forward(self, model, batch):
            head = self.accelerator.unwrap_model(model).get_output_embeddings()
            exact = head.weight.dtype == torch.float32  # TRL's log-softmax runs in the model's dtype: the same values in float32
            if not getattr(self, "trained_positions", False) or self.is_encoder_decoder or self.aux_loss_enabled or not exact:
                return super().concatenated_forward(model, batch)
            pad = self.padding_value if hasattr(self, "padding_value") else self.pad_token_id
            cat = self.concatenated_inputs(batch, padding_value=pad, device=self.accelerator.device)
            chosen = batch["chosen_labels"].shape[0]
            ids, attention, answers = cat["concatenated_input_ids"], cat["concatenated_attention_mask"], cat["concatenated_labels"]
            with_sft = on_prompt or (not orpo and self.cpo_alpha != 0)  # CPO: no SFT term at cpo_alpha 0 (pure SimPO)
            sft = torch.zeros_like(ids, dtype=torch.bool)
            if with_sft:
                sft[:chosen] = (attention[:chosen] == 1) if on_prompt else (answers[:chosen] != -100)
            labels = ids.masked_fill((answers == -100) & ~sft, -100)
            out = model(ids, attention_mask=attention, use_cache=False, labels=labels, fused_lm_head=True, every_mean_logit=True)
            log_probs, answer = out.log_probs, answers[:, 1:] != -100
            logps = (log_probs * answer).sum(-1)
            if orpo or self.loss_type in ("ipo", "simpo"):  # TRL's average_log_prob
                logps = logps / answer.sum(-1)
            sft = sft[:chosen, 1:]
            nll = -(log_probs[:chosen] * sft).sum() / sft.sum() if with_sft else torch.tensor(0.0)
            mean_logits = out.mean_logits[:, :-1] if orpo else out.mean_logits  # ORPO's are the shifted logits
            return logps[:chosen], logps[chosen:], mean_logits[:chosen], mean_logits[chosen:], nll.to(logps.device)

    Trainer.__name__ = Trainer.__qualname__ = trainer_class.__name__
    return Trainer


def answer_only_sft(trainer_class: type[Trainer], weight: float = 1.0) -> type[Trainer]:
    """``trainer_class`` (TRL's ``ORPOTrainer``, or ``CPOTrainer`` for SimPO) with LLaMA-Factory's SFT term:
    ``-weight * mean(chosen_logps)`` (ORPO: ``weight`` 1 + ``pref_ftx``, LLaMA-Factory adding ``pref_ftx``
    times the same term to ORPO's own).

    ``chosen_logps`` (the first value ``concatenated_forward`` returns) are the chosen answers' mean
    token log-probabilities, so the term trains the answers only, each pair weighing the same; TRL's
    ORPO term is the cross-entropy over every token of the chosen sequences, prompt included, and its
    CPO term (SimPO's ``pref_ftx``) the cross-entropy over every chosen answer token of the batch.
    """

    class Trainer(trainer_class):  # type: ignore[misc, valid-type]
        def concatenated_forward(self, model, batch):
            out = super().concatenated_forward(model, batch)
            return (*out[:4], -weight * out[0].mean(), *out[5:])

    Trainer.__name__ = Trainer.__qualname__ = trainer_class.__name__
    return Trainer


def experimental_pair_trainer(
    ctx: StageContext, trainer_class: type[Trainer], args: Any, orpo_sft: str | None = None, sft_per_pair: bool = False,
    sft_weight: float = 1.0,
) -> Trainer:
    """TRL's experimental ORPO (``orpo_sft``: ``"answer"`` or ``"sequence"``, see ``orpo_sft_loss``) or CPO
    trainer for the run: the template's stop token kept (:func:`keeping_the_template_stop`), trained positions
    only on the CPU (:func:`on_trained_positions`), the SFT term of ORPO (``orpo_sft="answer"``) or of CPO
    (``sft_per_pair``: SimPO's ``pref_ftx_average: sample``) averaged per pair and weighed ``sft_weight``
    (:func:`answer_only_sft`)."""
    trainer_class = on_trained_positions(trainer_class, orpo_sft)
    if orpo_sft == "answer" or sft_per_pair:
        trainer_class = answer_only_sft(trainer_class, sft_weight)
    trainer_class = keeping_the_template_stop(trainer_class)
    return trained_positions_on_cpu(ctx.trainer(trainer_class, args), ctx.use_cpu)


def answer_mean_logps(model: Any, inputs: dict[str, Any], compute: Callable[[], Any]) -> tuple[Any, Any]:
    """``compute()`` (a TRL trainer's loss on ``inputs``: ``{input_ids, completion_mask, ...}``), and the mean token
    log-probability of each sequence's answer in the policy's forward pass on ``inputs["input_ids"]``.

    The pass is the first call of ``model`` on those ids that tracks gradients (the reference pass, and
    KTO's KL pass on ids that may be the same, run without), or the first at all when none does
    (evaluation); its per-token log-probabilities are read from its output (TRL's ``log_probs``).
    """
    import torch

    outputs: list = []

    def keep(module, args, kwargs, output):
        ids = kwargs.get("input_ids")
        if ids is not None and ids.shape == inputs["input_ids"].shape and torch.equal(ids, inputs["input_ids"]):
            outputs.append(output)

    hook = model.register_forward_hook(keep, with_kwargs=True)
    try:
        result = compute()
    finally:
        hook.remove()
    policy = next((out for out in outputs if out.log_probs.requires_grad), outputs[0])
    answer = inputs["completion_mask"][:, 1:]
    per_token = policy.log_probs[:, -answer.size(1) :]
    return result, (per_token * answer).sum(-1) / answer.sum(-1).clamp(min=1)


def with_added_loss(result: Any, term: Any, return_outputs: bool) -> Any:
    """A trainer's ``_compute_loss`` result (the loss, or (loss, outputs)) with ``term`` added to the loss."""
    return (result[0] + term, result[1]) if return_outputs else result + term


def experimental_trl(name: str) -> Any:
    """The module ``trl.experimental.<name>``, imported without TRL's warning that its API may change."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    return importlib.import_module(f"trl.experimental.{name}")


@dataclass(frozen=True)
class Stage:
    """One training stage: how samples become rows, and how its trainer is built."""

    name: str
    data_stage: str  # the LLaMA-Factory stage the data is validated for (pt, sft, rm, dpo, kto)
    to_row: RowFunction
    build: Callable[[StageContext], Trainer]
    conversational: bool = True  # rows are chat messages: the tokenizer needs a chat template
    token_columns: tuple[str, ...] = ()  # when TRL cannot count tokens seen: count these columns instead
    description: str = ""
