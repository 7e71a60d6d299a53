"""Live progress of a run, its guards against non-finite numbers, and the summary written beside its outputs.

:class:`ProgressPrinter` is a transformers ``TrainerCallback`` that prints one
line per logging step (step, loss, learning rate, epoch) on the main process
and keeps every logged loss; :class:`RawLossWatch` counts the training steps
whose raw loss is NaN or inf (transformers' logging replaces those by an
average); :func:`nonfinite_tensors` reads the saved weights back;
:class:`TrainSummary` is what ends up in ``train_summary.json``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

from fmtkit.errors import FmtkitError


@dataclass
class TrainSummary:
    """The outcome of a run (``train_summary.json``): steps, losses, tokens and time."""

    stage: str
    model: str
    finetuning_type: str
    device: str
    global_step: int = 0
    max_steps: int = 0
    epochs: float = 0.0
    train_loss: float | None = None
    losses: list[dict[str, float]] = field(default_factory=list)  # {"step", "loss"} per logging step
    eval_loss: float | None = None
    eval_losses: list[dict[str, float]] = field(default_factory=list)
    train_samples: int = 0
    eval_samples: int = 0
    train_tokens: int = 0
    tokens_counted: str = "trainer"  # "trainer": counted per batch; "dataset": per-epoch dataset tokens x epochs
    train_runtime_s: float = 0.0
    tokens_per_second: float = 0.0
    trainable_params: int = 0
    total_params: int = 0
    resumed_from: str | None = None
    # The data check before training (trainer_plugin.checks): samples over cutoff_len, tokens they lose,
    # all-masked samples, template problems per dataset.
    data_warnings: dict[str, Any] | None = None
    nonfinite_loss_steps: int = 0  # training steps (micro-batches) whose raw loss was NaN or inf
    status: str = "completed"  # "failed": a loss or a saved weight is not finite
    failure: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, allow_nan=True)

    @property
    def losses_finite(self) -> bool:
        return all(math.isfinite(item["loss"]) for item in self.losses)

    def loss_failures(self) -> list[str]:
        """What is not finite in the losses of the run ([] when all is well)."""
        failures = []
        if self.nonfinite_loss_steps:
            failures.append(f"the loss was NaN or inf at {self.nonfinite_loss_steps} training step(s)")
        logged = [item["step"] for item in self.losses if not math.isfinite(item["loss"])]
        if logged and not self.nonfinite_loss_steps:
            failures.append(f"the logged loss is not finite at step(s) {', '.join(map(str, logged[:5]))}")
        if self.train_loss is not None and not math.isfinite(self.train_loss) and not failures:
            failures.append("the mean training loss is not finite")
        return failures


def wants_progress_bar() -> bool:
    """A live bar (steps, ETA, loss) when the output is a terminal; one line per logging step when piped."""
    import sys

    from trainer_plugin.gate import is_main_process

    return sys.stdout.isatty() and is_main_process()


def bar_echo(text: str) -> None:
    """Print above the live bar without breaking it."""
    from tqdm.auto import tqdm

    tqdm.write(text)


class LossBar(ProgressCallback):
    """The Trainer's progress bar with the last loss beside it (in place of the raw log dict it prints)."""

    def on_log(self, args, state, control, logs: dict[str, Any] | None = None, **kwargs: Any):
        if self.training_bar is not None and logs and "loss" in logs:
            self.training_bar.set_postfix(loss=f"{float(logs['loss']):.4f}", refresh=False)


def check_reporting(config: Any, echo: Callable[[str], None]) -> bool:
    """Every tracker of ``report_to`` is installed (else a clear error before the model loads); whether
    ``plot_loss`` can plot (without matplotlib it warns: LLaMA-Factory's example configs all ask for the plot)."""
    import importlib.util

    from trainer_plugin.config import TRACKERS

    missing = [name for name in config.trackers if importlib.util.find_spec(TRACKERS[name]) is None]
    if missing:
        raise FmtkitError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed (report_to): "
            f"pip install 'fmtkit[{','.join(missing)}]', or remove it from report_to"
        )
    if config.plot_loss and importlib.util.find_spec("matplotlib") is None:
        echo("warning: plot_loss needs matplotlib, which is not installed: no loss curve (pip install 'fmtkit[plot]')")
        return False
    return bool(config.plot_loss)


def _smoothed(values: list[float]) -> list[float]:
    """An exponential moving average whose weight grows with the number of points (TensorBoard's style of smoothing)."""
    weight = 1.8 * (1 / (1 + math.exp(-0.05 * len(values))) - 0.5)
    out: list[float] = []
    for value in values:
        out.append(value if not out else out[-1] * weight + (1 - weight) * value)
    return out


def plot_losses(output_dir: str | Path, losses: dict[str, list[dict[str, float]]], folder: str | Path | None = None) -> list[Path]:
    """Save ``training_<key>.png`` in ``output_dir`` for each key with points (the logged and the smoothed curve).

    ``folder``: where the files go when not ``output_dir`` itself (the temporary folder of an atomic save).
    """
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    written = []
    for key, points in losses.items():
        if not points:
            continue
        steps, values = [p["step"] for p in points], [p["loss"] for p in points]
        figure, axes = plt.subplots()
        axes.plot(steps, values, color="#1f77b4", alpha=0.4, label="logged")
        axes.plot(steps, _smoothed(values), color="#1f77b4", label="smoothed")
        axes.set(title=f"training {key} of {output_dir}", xlabel="step", ylabel=key)
        axes.legend()
        path = Path(folder or output_dir) / f"training_{key}.png"
        figure.savefig(path, format="png", dpi=100)
        plt.close(figure)
        written.append(path)
    return written


class RawLossWatch(TrainerCallback):
    """Counts the training steps whose loss is NaN or inf, as the step returns it (before any logging filter).

    :meth:`attach` wraps the trainer's ``training_step``; the count stays on the
    device (no synchronisation per step) and is read at each logging step and at the end.
    """

    def __init__(self) -> None:
        self._bad: Any = None  # a 0-d tensor on the loss's device
        self._logged = 0  # the count at the last logging step

    def attach(self, trainer: Any) -> None:
        step = trainer.training_step

        def training_step(*args: Any, **kwargs: Any):
            loss = step(*args, **kwargs)
            flag = (~loss.detach().isfinite()).sum()
            self._bad = flag if self._bad is None else self._bad + flag
            return loss

        trainer.training_step = training_step

    def nonfinite_steps(self) -> int:
        return int(self._bad.item()) if self._bad is not None else 0

    def on_log(self, args, state, control, logs: dict[str, Any] | None = None, **kwargs: Any):
        if logs is not None and "loss" in logs:
            count = self.nonfinite_steps()
            if count > self._logged:
                logs["loss"] = math.nan  # the logged loss says so too, whatever transformers averaged
            self._logged = count


def nonfinite_tensors(folder: str | Path) -> list[str]:
    """Names of the tensors holding NaN or inf in the ``*.safetensors`` files of ``folder`` (the saved weights)."""
    from safetensors import safe_open

    bad = []
    for path in sorted(Path(folder).glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as weights:
            for name in weights.keys():  # noqa: SIM118 - safe_open is not a mapping
                tensor = weights.get_tensor(name)
                if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
                    bad.append(f"{path.name}:{name}")
    return bad


class ProgressPrinter(TrainerCallback):
    """Prints ``step 3/10  loss 1.2345  lr 4.00e-05  epoch 0.30`` at each logging step."""

    def __init__(self, echo: Callable[[str], None]):
        self.echo = echo
        self.losses: list[dict[str, float]] = []
        self.eval_losses: list[dict[str, float]] = []
        self.tokens_at_start = 0  # tokens a resumed run had seen before this session

    def on_train_begin(self, args, state, control, **kwargs: Any):
        self.tokens_at_start = int(state.num_input_tokens_seen or 0)  # the checkpoint's state is loaded by now
        if state.is_world_process_zero:
            self.echo(
                f"training {state.max_steps} steps: batch {args.per_device_train_batch_size} x "
                f"{args.gradient_accumulation_steps} accumulation x {args.world_size} device(s)"
            )

    def on_log(self, args, state, control, logs: dict[str, Any] | None = None, **kwargs: Any):
        logs = logs or {}
        step = state.global_step
        if "loss" in logs:
            loss = float(logs["loss"])
            self.losses.append({"step": step, "loss": loss})
            if state.is_world_process_zero:
                lr = logs.get("learning_rate")
                parts = [f"step {step}/{state.max_steps}", f"loss {loss:.4f}"]
                if lr is not None:
                    parts.append(f"lr {float(lr):.2e}")
                if state.epoch is not None:
                    parts.append(f"epoch {state.epoch:.2f}")
                if not math.isfinite(loss):
                    parts.append("(not finite!)")
                self.echo("  ".join(parts))
        if "eval_loss" in logs:
            loss = float(logs["eval_loss"])
            self.eval_losses.append({"step": step, "loss": loss})
            if state.is_world_process_zero:
                self.echo(f"step {step}/{state.max_steps}  eval_loss {loss:.4f}")
