"""Observability of a run: report_to (TensorBoard's event files), logging_steps, run_name, plot_loss, the progress bar."""

from __future__ import annotations

import json

import pytest
from cli_runner import run_cli_joined
from test_train_cli import config, data_dir  # noqa: F401 - fixtures

pytestmark = [pytest.mark.train, pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing")]
pytest.importorskip("trl")

fmtkit = run_cli_joined


def test_tensorboard_run_name_logging_steps_and_the_loss_plot(capsys, config, tmp_path):
    pytest.importorskip("tensorboard")
    pytest.importorskip("matplotlib")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = tmp_path / "board"
    path, out = config(
        stage="sft",
        dataset="alpaca_sft",
        max_steps=4,
        logging_steps=2,
        report_to="tensorboard",
        logging_dir=str(board),
        run_name="tiny-run",
        plot_loss=True,
    )
    code, log = fmtkit(capsys, "train", path)
    assert code == 0, log
    # logging_steps 2: a line at steps 2 and 4 only (piped output: no bar)
    assert "step 2/4  loss" in log and "step 4/4  loss" in log and "step 1/4" not in log and "step 3/4" not in log
    events = list(board.glob("events.out.tfevents.*"))
    assert len(events) == 1, list(board.iterdir())
    board_log = EventAccumulator(str(board)).Reload()
    losses = board_log.Scalars("train/loss")
    assert [e.step for e in losses] == [2, 4]
    summary = json.loads((out / "train_summary.json").read_text())
    assert [round(e.value, 4) for e in losses] == [round(item["loss"], 4) for item in summary["losses"]]
    # run_name reaches the trackers (transformers writes the arguments into the board)
    args_text = board_log.Tensors("args/text_summary")[0].tensor_proto.string_val[0].decode()
    assert '"run_name": "tiny-run"' in args_text
    png = out / "training_loss.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"loss curve saved to {png}" in log


def test_a_tracker_that_is_not_installed_stops_the_run_before_the_model_loads(capsys, config, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    absent = ("wandb", "matplotlib")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in absent else real(name, *a))
    path, out = config(stage="sft", dataset="alpaca_sft", report_to="tensorboard,wandb")
    code, log = fmtkit(capsys, "train", path)
    assert code == 2 and "wandb is not installed" in log and "pip install 'fmtkit[wandb]'" in log, log
    assert "loading" not in log and not out.exists()
    # LLaMA-Factory's example configs all ask for plot_loss: without matplotlib, a warning only
    path, _ = config(stage="sft", dataset="alpaca_sft", plot_loss=True)
    code, log = fmtkit(capsys, "train", path, "--dry-run")
    assert code == 0 and "warning: plot_loss needs matplotlib" in log, log
    path, _ = config(stage="sft", dataset="alpaca_sft", report_to="tensorbord")
    code, log = fmtkit(capsys, "train", path)
    assert code == 2 and "report_to: 'tensorbord' is not one of" in log and "did you mean tensorboard" in log


def test_a_terminal_gets_the_progress_bar_with_the_loss(capsys, config, monkeypatch):
    import trainer_plugin.progress as progress

    monkeypatch.setattr(progress, "wants_progress_bar", lambda: True)
    path, out = config(stage="sft", dataset="alpaca_sft", max_steps=2)
    code, log = fmtkit(capsys, "train", path)
    assert code == 0, log
    assert "2/2 [" in log and "loss=" in log  # tqdm's bar, with the loss beside it
    assert "step 2/2  loss" in log  # the logging-step lines, written above the bar
    assert "{'loss'" not in log  # not the Trainer's raw log dicts
