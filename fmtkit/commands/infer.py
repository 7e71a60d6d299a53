"""``fmtkit infer``: the command line over :func:`fmtkit.models.infer.infer_dataset`."""

from __future__ import annotations

import click

from fmtkit.commands.chat import generation_options, model_options, settings_from
from fmtkit.detect import FORMS
from fmtkit.models.loading import load_model


@click.command("infer")
@model_options
@click.option("--dataset", "source", required=True, metavar="SOURCE",
              help="A data file, or a dataset folder with dataset_info.json.")  # fmt: skip
@click.option("--entry", metavar="NAME", help="The dataset_info.json entry to read (when the folder has several).")
@click.option("--form", type=click.Choice(FORMS), help="Force the form of a bare data file instead of detecting it.")
@click.option("--output", "-o", "output", required=True, type=click.Path(dir_okay=False), help="JSON Lines file to write.")
@generation_options(max_new_tokens=256)
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True, help="Prompts generated together.")
def infer(
    model: str | None,
    adapter: str | None,
    dtype: str,
    device: str | None,
    trust_remote_code: bool,
    source: str,
    entry: str | None,
    form: str | None,
    output: str,
    max_new_tokens: int,
    temperature: float | None,
    top_p: float | None,
    do_sample: bool,
    batch_size: int,
) -> None:
    """Generate an answer for every prompt of a dataset, with MODEL or a trained --adapter.

    Writes one JSON line per record: {"prompt": [messages], "reference":
    answer or null, "prediction": text, "new_tokens": n}. A vision-language
    model sees the images of each record (and the line names them: "images"). Greedy unless
    --do-sample, --temperature or --top-p is given. The output file appears
    only when complete.

    \b
    Examples:
      fmtkit infer models/Qwen3-0.6B --dataset data/test.jsonl -o predictions.jsonl
      fmtkit infer --adapter outputs/sft-lora --dataset dataset/ --entry alpaca_zh -o pred.jsonl
    """
    import fmtkit
    from fmtkit.models.infer import infer_dataset
    from fmtkit.sources import resolve

    settings = settings_from(max_new_tokens, temperature, top_p, do_sample)
    _refuse_output_on_data(source, output)
    samples = list(fmtkit.read(source, entry=entry, form=form))  # unreadable data fails before the model loads
    loaded = load_model(model, adapter, dtype=dtype, device=device, trust_remote_code=trust_remote_code)
    image_dir = resolve(source, entry).base_dir if loaded.processor is not None else None  # where LLaMA-Factory finds media
    with _ProgressBar(f"{loaded.name} on {loaded.device}") as bar:
        summary = infer_dataset(
            loaded, samples, output, settings, batch_size=batch_size, on_start=bar.start, on_progress=bar.advance,
            image_dir=image_dir,
        )  # fmt: skip
    notes = []
    if summary.skipped:
        notes.append(f"{summary.skipped} records without a prompt skipped")
    if summary.with_media:
        notes.append(f"{summary.with_media} prompts had media the model did not see")
    if summary.cut:
        notes.append(f"{summary.cut} answers cut at --max-new-tokens")
    extra = f" ({'; '.join(notes)})" if notes else ""
    click.echo(f"wrote {summary.written} predictions to {summary.output}{extra}", err=True)


def _refuse_output_on_data(source: str, output: str) -> None:
    """-o must not be the dataset read, its dataset_info.json, or data an entry of its folder (or the output's folder) reads."""
    from pathlib import Path

    from fmtkit.dataset_info import INFO_FILE
    from fmtkit.writing import refuse_output

    src, out = Path(source), Path(output)
    folders = [d for d in (src, src.parent, out.parent) if (d / INFO_FILE).is_file()]
    refuse_output(out, [src] if src.is_file() else [], folders)


class _ProgressBar:
    """A rich progress bar on stderr, started once the number of prompts is known."""

    def __init__(self, description: str):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.description = description
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=Console(stderr=True), transient=False,
        )  # fmt: skip
        self.task: int | None = None

    def __enter__(self) -> _ProgressBar:
        return self

    def start(self, total: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task(self.description, total=total)

    def advance(self, n: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, n)

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()
