"""One training run, start to finish: gate, data, device, tokenizer, trainer, outputs.

:func:`train` is what ``fmtkit train`` calls; each step is its own function so
that a Python user (or a test) can run part of it, e.g.
:func:`train_on_datasets` with rows made in memory.

Outputs in ``output_dir``: the adapter (or the full model), the tokenizer with
its chat template, checkpoints, ``train_config.yaml`` (the resolved config,
loadable again) and ``train_summary.json`` (:class:`~trainer_plugin.progress.TrainSummary`).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmtkit.errors import EXIT_FINDINGS, FmtkitError
from fmtkit.models.vision import is_processor, is_vision_model
from fmtkit.sample import Sample
from fmtkit.writing import atomic_folder
from trainer_plugin.checks import assistant_only, check_data, fit_dataset
from trainer_plugin.config import TrainConfig
from trainer_plugin.data import (
    entry_num_samples,
    load_samples,
    rows_for,
    split_eval,
    subsample,
    take,
    to_dataset,
    train_entry,
    with_kl_answers,
)
from trainer_plugin.gate import check_datasets, is_main_process
from trainer_plugin.stages import Stage, StageContext, get_stage
from trainer_plugin.vision import check_vision_data, freeze_vision_parts, load_vision_processor, row_function

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

    from trainer_plugin.progress import TrainSummary

Echo = Callable[[str], None]
CONFIG_FILE = "train_config.yaml"
SUMMARY_FILE = "train_summary.json"
TOKENIZED_CHECK_FILE = "fmtkit_data_check.json"  # beside the saved set in tokenized_path: its stage and data check
_OFFLINE_HINT = "a local folder, or a hub id already in the local cache"


def default_echo(text: str) -> None:
    """Print on the main process; ``warning:`` / ``error:`` lines in colour on a terminal."""
    if is_main_process():
        import click

        for prefix, colour in (("warning:", "yellow"), ("error:", "red")):
            if text.startswith(prefix):
                text = click.style(prefix, fg=colour, bold=True) + text[len(prefix) :]
        click.echo(text)


class TokenizerLoadError(FmtkitError):
    """The tokenizer of ``model_name_or_path`` cannot be loaded."""


@dataclass
class PreparedData:
    """The run's datasets in TRL form, and how many samples each entry gave."""

    train: Dataset
    eval: Dataset | None
    counts: dict[str, int]
    # The first sample of each training dataset, for the data check's template problems.
    samples: dict[str, list[Sample]] | None = None


def prepare_data(config: TrainConfig, stage: Stage, echo: Echo = default_echo) -> PreparedData:
    """Read each entry (``num_samples`` of dataset_info.json, then at most ``max_samples`` each),
    map to TRL rows, concatenate, split off eval data."""
    train_rows: list[dict[str, Any]] = []
    eval_rows: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    train_samples: dict[str, list[Sample]] = {}
    for names, rows in ((config.dataset_names, train_rows), (config.eval_dataset_names, eval_rows)):
        for name in names:
            entry = train_entry(config.dataset_dir, name)  # train's own message for an entry that is not local
            num_samples = entry_num_samples(entry)
            if num_samples is None:
                samples = take(load_samples(entry), config.max_samples)
            else:  # as LLaMA-Factory: the entry's random subsample first, then max_samples
                samples = subsample(list(load_samples(entry)), num_samples, config.seed)
                samples = take(samples, config.max_samples)
            counts[name] = len(samples)
            rows.extend(rows_for(samples, row_function(config, stage), name, config.default_system))
            if rows is train_rows:
                train_samples[name] = samples[:1]
    train = to_dataset(train_rows)
    evaluation = to_dataset(eval_rows) if eval_rows else None
    if stage.name == "kto" and config.resolved_kto_kl_pairs == "llamafactory":  # paired before the split, as LLaMA-Factory
        train = with_kl_answers(train, config.preprocessing_batch_size)
        evaluation = with_kl_answers(evaluation, config.preprocessing_batch_size) if evaluation is not None else None
    if config.val_size:
        train, split = split_eval(train, config.val_size, config.seed)
        evaluation = split if evaluation is None else _concat(evaluation, split)
    echo(
        f"data: {len(train)} training samples"
        + (f", {len(evaluation)} evaluation samples" if evaluation is not None else "")
        + f" ({', '.join(f'{name}: {n}' for name, n in counts.items())})"
    )
    return PreparedData(train, evaluation, counts, train_samples)


@dataclass
class TokenizedSet:
    """A tokenized training set saved in ``tokenized_path``: the trainer's rows and the data check made with them."""

    train: Dataset
    eval: Dataset | None
    data_warnings: dict[str, Any]


def has_tokenized_set(path: str | Path) -> bool:
    """LLaMA-Factory's test for ``tokenized_path``: a folder with something in it (then it is loaded, not written)."""
    folder = Path(path)
    return folder.is_dir() and any(folder.iterdir())


def load_tokenized_set(config: TrainConfig, echo: Echo = default_echo) -> TokenizedSet:
    """The set saved in ``config.tokenized_path`` by an earlier run (:func:`save_tokenized_set`), for the same stage."""
    import json

    from datasets import load_from_disk

    folder = Path(config.tokenized_path or "")
    check = folder / TOKENIZED_CHECK_FILE
    if not check.is_file():
        raise FmtkitError(
            f"tokenized_path {folder} holds files but no tokenized set saved by fmtkit train (no {TOKENIZED_CHECK_FILE}): "
            "empty the folder, or point tokenized_path at a new one, and fmtkit saves the set there"
        )
    saved = json.loads(check.read_text(encoding="utf-8"))
    if saved["stage"] != config.trainer_stage:
        raise FmtkitError(
            f"tokenized_path {folder} holds a set tokenized for stage {saved['stage']}, not {config.trainer_stage}: "
            "point tokenized_path at another folder"
        )
    sets = load_from_disk(str(folder))
    echo(
        f"loaded the tokenized set from {folder} (tokenized_path): {len(sets['train']):,} training rows; the dataset keys "
        "(dataset, cutoff_len, template, ...) are not read again (empty the folder to tokenize anew)"
    )
    return TokenizedSet(sets["train"], sets["validation"] if "validation" in sets else None, saved["data_warnings"])


def save_tokenized_set(config: TrainConfig, tokenized: TokenizedSet, echo: Echo = default_echo) -> None:
    """Save the run's tokenized set in ``config.tokenized_path`` (written beside it, then renamed into place)."""
    import json
    import shutil

    from datasets import DatasetDict

    from fmtkit.writing import temp_path

    folder = Path(config.tokenized_path or "")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(folder)
    sets = {"train": tokenized.train, **({"validation": tokenized.eval} if tokenized.eval is not None else {})}
    try:
        DatasetDict(sets).save_to_disk(str(tmp))
        saved = {"stage": config.trainer_stage, "data_warnings": tokenized.data_warnings}
        (tmp / TOKENIZED_CHECK_FILE).write_text(json.dumps(saved, indent=1), encoding="utf-8")
        if folder.is_dir():
            folder.rmdir()  # empty: has_tokenized_set said so
        os.rename(tmp, folder)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise FmtkitError(f"cannot save the tokenized set in tokenized_path {folder}: {exc}") from exc
    echo(f"tokenized set saved to {folder}: later runs with `tokenized_path: {folder}` load it")


def _concat(a: Dataset, b: Dataset) -> Dataset:
    from datasets import concatenate_datasets

    return concatenate_datasets([a, b])


@dataclass
class Device:
    """Where the run trains, and the precision and checkpointing that follow."""

    name: str
    use_cpu: bool
    bf16: bool
    fp16: bool
    activation_checkpointing: bool


def detect_device(config: TrainConfig, echo: Echo = default_echo) -> Device:
    """The accelerator if there is one, else the CPU (saying so, with bf16/fp16 turned off)."""
    import torch

    accelerator = torch.accelerator.current_accelerator() if torch.accelerator.is_available() else None
    if accelerator is None:
        off = [name for name in ("bf16", "fp16") if getattr(config, name)]
        echo("no GPU found: training on the CPU" + (f" ({' and '.join(off)} turned off)" if off else ""))
        return Device("cpu", use_cpu=True, bf16=False, fp16=False, activation_checkpointing=False)
    name = accelerator.type
    if accelerator.type == "cuda":
        name = f"cuda ({torch.cuda.get_device_name(0)} x {torch.cuda.device_count()})"
    echo(f"training on {name}")
    return Device(
        name,
        use_cpu=False,
        bf16=config.bf16,
        fp16=config.fp16,
        activation_checkpointing=not config.disable_gradient_checkpointing,
    )


def load_tokenizer(config: TrainConfig, stage: Stage, echo: Echo = default_echo):
    """The base model's tokenizer, with the config's chat template and a pad token.

    Checks, before any model loads, that conversational stages have a chat
    template; whether assistant-only SFT can mask with it is :func:`loss_template`'s.
    """
    from transformers import AutoTokenizer

    from fmtkit.templates import chat_template

    from fmtkit.stats.tokenizer import no_tokenizer_message

    path = config.model_name_or_path
    if is_vision_model(path):  # a VLM: its processor (trainer_plugin.vision)
        return load_vision_processor(config, echo)
    missing = no_tokenizer_message(path)
    if missing is not None:
        raise TokenizerLoadError(missing)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise TokenizerLoadError(f"cannot load the tokenizer of {path!r} ({_OFFLINE_HINT}): {exc}") from exc
    if config.template:
        tokenizer.chat_template = chat_template(
            config.template, train_separator=config.train_eot_newline, enable_thinking=config.enable_thinking
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not stage.conversational:
        return tokenizer
    if not tokenizer.chat_template:
        raise FmtkitError(f"the tokenizer of {path} has no chat template: set `template:` (e.g. chatml, qwen3, llama3)")
    return tokenizer


def loss_template(config: TrainConfig, stage: Stage, tokenizer: Any, echo: Echo = default_echo) -> str | None:
    """The chat template the loss mask comes from: the tokenizer's, or TRL's training version of it.

    None when assistant-only SFT has no way to mask: the template has no
    ``{% generation %}`` markers and TRL has no training version of it (then
    every sample would be all-masked; :func:`~trainer_plugin.checks.check_data` stops the run).
    """
    if not stage.conversational or not assistant_only(config, stage):
        return tokenizer.chat_template
    from trl.chat_template_utils import get_training_chat_template

    from fmtkit.templates import has_generation_markers

    if has_generation_markers(tokenizer.chat_template):
        return tokenizer.chat_template
    try:
        patched = get_training_chat_template(tokenizer)
    except ValueError:
        return None
    echo("the model's chat template has no generation markers: TRL uses its training version of it")
    return patched or tokenizer.chat_template


def check_before_training(
    config: TrainConfig,
    stage: Stage,
    tokenizer: Any,
    samples: dict[str, list[Sample]] | None,
    train_dataset: Dataset,
    echo: Echo = default_echo,
) -> tuple[Dataset, dict[str, Any]]:
    """The data check of a run (see :mod:`trainer_plugin.checks`): the rows left to train and the ``data_warnings``,
    or an error when nothing would train."""
    if is_processor(tokenizer):  # a VLM's processor: rows with images (trainer_plugin.vision)
        return check_vision_data(config, stage, tokenizer, train_dataset, echo)
    template = loss_template(config, stage, tokenizer, echo)
    return check_data(config, stage, tokenizer, template, samples, train_dataset, echo)


def _in_hub_cache(name: str) -> bool:
    """Whether ``name`` looks like a hub id (``owner/name``) whose files the local hub cache holds."""
    import re

    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", name) or ".." in name:
        return False
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover
        return False
    try:
        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except (ValueError, OSError):  # a malformed id (HFValidationError is a ValueError): not in the cache
        return False


def check_model_path(path: str) -> None:
    """``model_name_or_path`` must be a local folder (or a hub id already in the local hub cache).

    fmtkit never downloads at train time, so a missing model is an error (exit 2)
    before the data is even read, with the command that fetches it.
    """
    if Path(path).is_dir() or _in_hub_cache(path):
        return
    raise FmtkitError(
        f"model_name_or_path {path!r} is not a folder here; fmtkit never downloads at train time:"
        f" run `fmtkit download REPO --local-dir {path}` first (REPO: the model's hub id, owner/name)"
    )


def train(
    config: TrainConfig,
    notes: list[str] | tuple[str, ...] = (),
    echo: Echo = default_echo,
    dry_run: bool = False,
    callbacks: list[Any] | None = None,
) -> TrainSummary | None:
    """Run ``fmtkit train``: check the model folder, validate, read, then train and save (nothing past the data when ``dry_run``).

    ``callbacks``: extra transformers ``TrainerCallback`` objects (e.g. a benchmark's timer).
    """
    from fmtkit.writing import refuse_model_folder

    check_model_path(config.model_name_or_path)
    refuse_model_folder(config.output_dir, "output_dir", {"model_name_or_path": config.model_name_or_path, "dataset_dir": config.dataset_dir})
    for note in notes:
        echo(note if note.startswith("warning:") else f"note: {note}")
    stage = get_stage(config.trainer_stage)
    if config.tokenized_path and has_tokenized_set(config.tokenized_path):
        tokenized = load_tokenized_set(config, echo)
        if dry_run:
            echo(f"dry run: stage {stage.name} on {config.model_name_or_path} stops here, before loading the model")
            return None
        return train_on_datasets(config, tokenized.train, tokenized.eval, echo, callbacks, tokenized=tokenized)
    entries = config.dataset_names + config.eval_dataset_names
    check_datasets(config.dataset_dir, entries, stage.data_stage, echo)
    data = prepare_data(config, stage, echo)
    if dry_run:
        from trainer_plugin.progress import check_reporting

        check_reporting(config, echo)
        try:
            tokenizer = load_tokenizer(config, stage, echo)
        except TokenizerLoadError as exc:
            echo(f"note: no data check of tokens ({exc})")
        else:
            check_before_training(config, stage, tokenizer, data.samples, data.train, echo)
        echo(f"dry run: stage {stage.name} on {config.model_name_or_path} stops here, before loading the model")
        return None
    return train_on_datasets(config, data.train, data.eval, echo, callbacks, data)


def train_on_datasets(
    config: TrainConfig,
    train_dataset: Dataset,
    eval_dataset: Dataset | None = None,
    echo: Echo = default_echo,
    callbacks: list[Any] | None = None,
    data: PreparedData | None = None,
    tokenized: TokenizedSet | None = None,
) -> TrainSummary:
    """Train ``config``'s stage on datasets already in TRL form, then save outputs and the summary.

    ``data``: what :func:`prepare_data` read; its first samples are checked for template problems.
    ``tokenized``: a set loaded from ``tokenized_path``, already checked and tokenized (the datasets are its own).
    Else, with ``tokenized_path`` set, the set is saved there once tokenized.
    Every row is measured before the model loads and rows that would train on nothing are
    dropped (:mod:`trainer_plugin.fit`). A loss or a saved weight that is not finite fails the
    run (exit 1, ``status: failed`` in ``train_summary.json``).
    """
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from trainer_plugin.progress import (
        LossBar,
        ProgressPrinter,
        RawLossWatch,
        TrainSummary,
        bar_echo,
        check_reporting,
        nonfinite_tensors,
        plot_losses,
        wants_progress_bar,
    )

    # transformers 5.24 warns about its own deprecated alias, once per model load: not the user's concern.
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    stage = get_stage(config.trainer_stage)
    plot = check_reporting(config, echo)
    tokenizer = load_tokenizer(config, stage, echo)
    samples = data.samples if data is not None else None
    if tokenized is not None:
        data_warnings = tokenized.data_warnings
    else:
        # Before the device is touched: the check may fork tokenizing processes.
        train_dataset, data_warnings = check_before_training(config, stage, tokenizer, samples, train_dataset, echo)
        if eval_dataset is not None:
            eval_dataset = _fit_eval(config, stage, tokenizer, eval_dataset, echo)
        if config.tokenized_path and is_main_process():
            save_tokenized_set(config, TokenizedSet(train_dataset, eval_dataset, data_warnings), echo)
    device = detect_device(config, echo)
    bar = wants_progress_bar()
    progress = ProgressPrinter(bar_echo if bar else echo)
    raw_losses = RawLossWatch()
    ctx = StageContext(
        config=config,
        tokenizer=tokenizer,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        use_cpu=device.use_cpu,
        bf16=device.bf16,
        fp16=device.fp16,
        activation_checkpointing=device.activation_checkpointing,
        callbacks=[raw_losses, progress, *(callbacks or [])],  # raw_losses first: it corrects the logs
        progress_bar=bar,
    )
    echo(f"loading {config.model_name_or_path} for {stage.description} ({config.finetuning_type})")
    try:
        with _tensorboard_dir(config.logging_dir):
            trainer = stage.build(ctx)
    except OSError as exc:
        raise FmtkitError(f"cannot load the model {config.model_name_or_path!r} ({_OFFLINE_HINT}): {exc}") from exc
    if config.finetuning_type == "full" and is_processor(tokenizer):
        freeze_vision_parts(trainer.model, config)
    trainer.remove_callback(PrinterCallback)  # ProgressPrinter prints the lines
    if bar:
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(LossBar())
    raw_losses.attach(trainer)
    _compare_with_trainer(trainer, stage, config, data_warnings, echo)
    trainable, total = _parameter_counts(trainer.model)
    echo(f"trainable parameters: {trainable:,} of {total:,} ({100 * trainable / max(total, 1):.2f}%)")

    resume: str | bool | None = config.resume_from_checkpoint
    if resume == "true":
        resume = True
    try:
        result = trainer.train(resume_from_checkpoint=resume)
    except ValueError as exc:
        if resume and "checkpoint" in str(exc).lower():
            raise FmtkitError(f"cannot resume: {exc}") from exc
        raise
    if eval_dataset is not None and config.eval_strategy == "no":
        trainer.evaluate()  # the end-of-run evaluation; ProgressPrinter records eval_loss

    state = trainer.state
    summary = TrainSummary(
        stage=stage.name,
        model=config.model_name_or_path,
        finetuning_type=config.finetuning_type,
        device=device.name,
        global_step=state.global_step,
        max_steps=state.max_steps,
        epochs=float(state.epoch or 0.0),
        train_loss=result.training_loss,
        losses=progress.losses,
        eval_loss=progress.eval_losses[-1]["loss"] if progress.eval_losses else None,
        eval_losses=progress.eval_losses,
        train_samples=data_warnings["samples_trained"],
        eval_samples=len(eval_dataset) if eval_dataset is not None else 0,
        train_runtime_s=float(result.metrics.get("train_runtime", 0.0)),
        trainable_params=trainable,
        total_params=total,
        resumed_from=str(resume) if resume else None,
        data_warnings=data_warnings,
        nonfinite_loss_steps=raw_losses.nonfinite_steps(),
    )
    summary.train_tokens, summary.tokens_counted = _tokens_seen(trainer, stage, summary.epochs)
    if summary.train_runtime_s > 0:  # this session's tokens only, when resumed
        session_tokens = summary.train_tokens - (progress.tokens_at_start if summary.tokens_counted == "trainer" else 0)
        summary.tokens_per_second = round(session_tokens / summary.train_runtime_s, 1)
    failures = summary.loss_failures()
    output_dir = Path(config.output_dir)
    plots: list[Path] = []
    with _final_folder(trainer, output_dir) as folder:  # the weights, tokenizer, config and summary land together
        trainer.save_model(str(folder))
        if trainer.is_world_process_zero():
            bad = nonfinite_tensors(folder)
            if bad:
                failures.append(f"{len(bad)} saved weight tensor(s) hold NaN or inf (e.g. {bad[0]})")
            if failures:
                summary.status, summary.failure = "failed", "; ".join(failures)
            tokenizer.save_pretrained(folder)
            (folder / CONFIG_FILE).write_text(config.to_yaml(), encoding="utf-8")
            (folder / SUMMARY_FILE).write_text(summary.to_json(), encoding="utf-8")
            if plot:
                plots = plot_losses(output_dir, {"loss": summary.losses, "eval_loss": summary.eval_losses}, folder)
    for path in plots:
        echo(f"loss curve saved to {output_dir / path.name}")
    if failures:
        raise FmtkitError(
            f"training failed: {'; '.join(failures)}; the weights in {output_dir} are not usable"
            f" (run marked failed in {output_dir / SUMMARY_FILE})",
            exit_code=EXIT_FINDINGS,
        )
    echo(
        f"done: {summary.global_step} steps in {summary.train_runtime_s:.1f}s, train loss {summary.train_loss:.4f}, "
        f"{summary.train_tokens:,} tokens ({summary.tokens_per_second:,.0f}/s); saved to {output_dir}"
    )
    return summary


@contextmanager
def _final_folder(trainer: Any, output_dir: Path) -> Iterator[Path]:
    """Where the final save goes: on the main process, a temporary folder whose files land in ``output_dir``
    only once all are written (:func:`fmtkit.writing.atomic_folder`; removed if the save fails). Its name is
    shared with the other processes, which join the save (sharded models) but write nothing else."""
    from accelerate.utils import broadcast_object_list
    from safetensors import SafetensorError

    main = trainer.is_world_process_zero()
    with atomic_folder(output_dir) if main else nullcontext() as tmp:
        [name] = broadcast_object_list([str(tmp) if main else None])
        try:
            yield Path(name)
        except SafetensorError as exc:  # its I/O errors say "(os error 28)": an OSError, for atomic_folder's message
            code = re.search(r"os error (\d+)", str(exc))
            if code is None:
                raise
            raise OSError(int(code[1]), os.strerror(int(code[1]))) from exc


@contextmanager
def _tensorboard_dir(logging_dir: str | None):
    """transformers' TensorBoard callback takes its folder from TENSORBOARD_LOGGING_DIR when it is built."""

    saved = os.environ.get("TENSORBOARD_LOGGING_DIR")
    if logging_dir:
        os.environ["TENSORBOARD_LOGGING_DIR"] = logging_dir
    try:
        yield
    finally:
        if logging_dir:
            if saved is None:
                os.environ.pop("TENSORBOARD_LOGGING_DIR", None)
            else:
                os.environ["TENSORBOARD_LOGGING_DIR"] = saved


def _fit_eval(config: TrainConfig, stage: Stage, tokenizer: Any, eval_dataset: Dataset, echo: Echo) -> Dataset | None:
    """The evaluation rows with something to score (an empty answer would make its loss NaN), saying how many were dropped."""
    if is_processor(tokenizer):
        kept, _ = check_vision_data(config, stage, tokenizer, eval_dataset, echo, what="evaluation")
        return kept if len(kept) else None
    template = loss_template(config, stage, tokenizer, lambda _: None)
    saved = tokenizer.chat_template
    try:
        tokenizer.chat_template = template or saved
        kept, fit = fit_dataset(config, stage, tokenizer, eval_dataset)
    finally:
        tokenizer.chat_template = saved
    if fit.dropped_total:
        echo(f"warning: {fit.dropped_total:,} of {fit.rows:,} evaluation samples dropped, nothing to score in them")
    return kept if len(kept) else None


def _compare_with_trainer(trainer: Any, stage: Stage, config: TrainConfig, data_warnings: dict[str, Any], echo: Echo) -> None:
    """Say so if the trainer's own preparation dropped rows the data check kept (the counts would then be wrong)."""
    if config.use_packing or stage.name == "pt":
        return  # packed: rows are merged into sequences, not counted one for one
    consumed = len(trainer.train_dataset)
    if consumed != data_warnings["samples_trained"]:
        echo(
            f"warning: the trainer kept {consumed:,} training samples where the data check counted "
            f"{data_warnings['samples_trained']:,}; train_summary.json reports the trainer's"
        )
        data_warnings["samples_trained"] = consumed


def _parameter_counts(model: Any) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def _tokens_seen(trainer: Any, stage: Stage, epochs: float) -> tuple[int, str]:
    """Tokens trained on: counted by the trainer, or (ORPO/SimPO) the dataset's tokens times the epochs done."""
    if not stage.token_columns:
        return int(trainer.state.num_input_tokens_seen or 0), "trainer"
    dataset = trainer.train_dataset
    per_epoch = sum(
        sum(len(ids) for ids in dataset[column]) for column in stage.token_columns if column in dataset.column_names
    )
    return int(per_epoch * epochs), "dataset"
