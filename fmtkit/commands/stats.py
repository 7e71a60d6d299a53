"""``fmtkit stats``: the click shell over :func:`fmtkit.stats.summarize`."""

from __future__ import annotations

import click

from fmtkit.commands.engine import engine_options, engine_running
from fmtkit.commands.output import output_options, resolve_output, write_report
from fmtkit.templates import TEMPLATES


@click.command("stats")
@click.argument("source", type=click.Path(path_type=str))
@click.option("--entry", "entries", multiple=True, help="Only these dataset names (repeat, or comma-separated).")
@click.option("--tokenizer", "tokenizer_path", help="Count tokens with this tokenizer (a model folder; a vision-language model's processor counts each image as its image tokens): imports transformers.")
@click.option("--template", help=f"Chat template, as `fmtkit train`'s `template:` takes it: {', '.join(TEMPLATES)} or a .jinja file (default: the tokenizer's).")
@click.option("--cutoff-len", type=click.IntRange(1), help="Report samples longer than this many tokens and what they lose.")
@output_options(["human", "json"], "human")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=str), help="Write the length histograms to this image: .png, .svg or .pdf (needs matplotlib).")
@click.option("--jobs", "-j", type=click.IntRange(1), help="Processes measuring samples and counting tokens (default: every core).")
@engine_options
@click.option("--remote", is_flag=True, help="SOURCE is an fsspec URL (hf://datasets/ORG/NAME/..., s3://, memory://): read it from there, streamed (Parquet and Arrow files are copied first). Uses the network.")
def stats(source, entries, tokenizer_path, template, cutoff_len, output_format, output, plot, jobs, engine, address, remote):
    """Counts, lengths, duplicates and script mix of each entry of SOURCE.

    SOURCE is a dataset folder (with dataset_info.json) or a data file. Without
    --tokenizer, lengths are characters and nothing heavy is imported. An entry
    that cannot be read (its file missing, a hub entry) is named and left out;
    the exit code is 2 only when no entry could be read. Memory stays bounded
    at any size: past 200,000 samples the percentiles come from a sketch
    (docs/stats.md says how close). In a terminal a progress bar shows the
    rate and time left. With a vision-language model folder as --tokenizer
    (Qwen2-VL...), its processor counts: each <image> is the image tokens it
    expands to, in the lengths and the --cutoff-len figures.

    \b
    Examples:
      fmtkit stats dataset/
      fmtkit stats dataset/ --entry alpaca_demo --tokenizer models/qwen --cutoff-len 1024
      fmtkit stats data.jsonl --output-format json --plot lengths.png
      fmtkit stats dataset/ --entry sharegpt_mm_demo --tokenizer models/qwen2-vl --cutoff-len 1024
      fmtkit stats shards/ --engine ray --address auto
    """
    import sys

    from fmtkit.errors import FmtkitError
    from fmtkit.stats.progress import ProgressBar
    from fmtkit.stats.source import Skipped, entry_files, entry_names, stream_entry
    from fmtkit.stats.summary import summarize

    output, output_format = resolve_output(output, output_format, ("human", "json"), "human")
    if (template or cutoff_len) and not tokenizer_path:
        raise FmtkitError("--template and --cutoff-len count tokens: pass --tokenizer too")
    tokenizer = None
    if plot:
        from fmtkit.stats.report import plot_type

        plot_type(plot)  # a bad --plot fails before the work
    processor = None  # a vision-language model's: its images count as their image tokens
    if tokenizer_path:
        from fmtkit.models.vision import counting_processor, is_vision_model
        from fmtkit.stats.tokenizer import load_tokenizer

        if is_vision_model(tokenizer_path):
            processor = counting_processor(tokenizer_path, template)
        else:
            tokenizer = load_tokenizer(tokenizer_path, template)
    wanted = [n.strip() for e in entries for n in e.split(",") if n.strip()] or None
    results = {}
    unreadable: dict[str, str] = {}  # entry -> why it could not be read at all; the others are still reported
    from fmtkit.remote import read_here

    with read_here(source, remote) as (here, fetched), engine_running(engine, jobs, address) as slots:
        named = fetched.named if fetched is not None else lambda text: text  # a URL, not its temporary copy
        for name in entry_names(here, wanted):
            label = name or source
            try:
                files = entry_files(here, name, fetched)  # an entry that cannot be read at all fails here, before any work
            except FmtkitError as exc:
                unreadable[label] = named(str(exc))
                continue
            if processor is not None:
                from fmtkit.sources import resolve
                from fmtkit.stats.tokens import MediaCounter

                tokenizer = MediaCounter(processor, resolve(str(here), name).base_dir)  # media paths are relative to it
            skipped = Skipped()
            with ProgressBar(label, files, enabled=sys.stderr.isatty()) as bar:
                summary = summarize(stream_entry(here, name, skipped, fetched), tokenizer, cutoff_len, jobs=slots or jobs, progress=bar)
            summary["skipped"] = {"records": skipped.records, "first": named(skipped.first)}
            results[label] = summary
    if unreadable and not results:
        raise FmtkitError("nothing could be read: " + "; ".join(f"{n}: {why}" for n, why in unreadable.items()))
    if plot:
        from fmtkit.stats.report import plot_lengths

        plot_lengths(plot, results, cutoff_len)
    write_report(output, lambda: _report(source, tokenizer_path, template, cutoff_len, output_format, plot, results, unreadable))


def _report(source, tokenizer_path, template, cutoff_len, output_format, plot, results, unreadable) -> None:
    if output_format == "json":
        import orjson

        doc = {"source": source, "tokenizer": tokenizer_path, "template": template, "cutoff_len": cutoff_len, "entries": results}
        if unreadable:
            doc["unreadable"] = unreadable
        click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode())
        return
    from fmtkit.report.terminal import console as safe_console

    from fmtkit.stats.duplicates import METHOD
    from fmtkit.stats.report import overview_table, print_entry

    console = safe_console(highlight=False)
    from rich.text import Text

    for name, s in results.items():
        print_entry(console, name, s)
    for name, why in unreadable.items():
        console.print(Text(f"{name}: not readable, left out: {why}", style="red"))
    if len(results) > 1:
        console.print(overview_table(results))
    console.print(f"[dim]duplicates: exact = {METHOD['exact']}; near = {METHOD['near']}[/]")
    if plot:
        console.print(Text(f"histograms written to {plot}"))
