"""Printing :func:`~fmtkit.stats.summary.summarize` results in the terminal (rich) and drawing histograms.

Kept apart from the numbers, so the library stays free of presentation and
``--output-format json`` prints the same dict this module formats.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

BAR_WIDTH = 40
_PARTIAL = " ▏▎▍▌▋▊▉"


def bar(count: int, top: int, width: int = BAR_WIDTH) -> str:
    """A horizontal bar of ``count`` out of ``top``, in eighths of a character.

    >>> bar(1, 2, 4), bar(0, 2, 4), bar(2, 2, 4)
    ('██', '', '████')
    """
    if top <= 0 or count <= 0:
        return ""
    eighths = max(1, round(count / top * width * 8))
    return "█" * (eighths // 8) + (_PARTIAL[eighths % 8] if eighths % 8 else "")


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "0%"


def histogram_table(dist: dict[str, Any], unit: str, cutoff_len: int | None = None) -> Table:
    """The histogram of a distribution as a table of bins, counts and bars (bins past the cutoff in red)."""
    table = Table(box=None, show_header=True, header_style="dim", pad_edge=False)
    table.add_column(unit, justify="right")
    table.add_column("samples", justify="right")
    table.add_column("")
    hist = dist["histogram"]
    top = max(hist["counts"], default=0)
    for lo, hi, n in zip(hist["edges"], hist["edges"][1:], hist["counts"]):
        over = cutoff_len is not None and hi - 1 > cutoff_len
        table.add_row(f"{lo:,}-{hi - 1:,}", f"{n:,}", Text(bar(n, top), style="red" if over else "cyan"))
    return table


def _distribution_line(d: dict[str, Any]) -> str:
    line = f"min {d['min']:,} · median {d['median']:,} · p95 {d['p95']:,} · max {d['max']:,} · mean {d['mean']:,}"
    if not d.get("exact", True):
        line += f" (median, p95 and histogram from a sketch: rank within ±{100 * d['rank_error']:.1f}% of the samples)"
    return line


def print_entry(console: Console, name: str, s: dict[str, Any]) -> None:
    """One entry's summary: counts, duplicates, scripts, labels, lengths and warnings."""
    c = s["counts"]
    n = c["records"]
    console.rule(Text.assemble((str(name), "bold"), f" · {n:,} records"), align="left")
    if s.get("skipped", {}).get("records"):
        sk = s["skipped"]
        console.print(Text(f"{sk['records']:,} records could not be read and are left out (first: {sk['first'][0]})", style="red"))
    kinds = ", ".join(f"{k} {v:,}" for k, v in c["kinds"].items()) or "none"
    roles = ", ".join(f"{k} {v:,}" for k, v in c["roles"].items())
    console.print(Text(f"kinds: {kinds} · turns {c['turns']:,}" + (f" ({roles})" if roles else "")))
    media = ", ".join(f"{k} {v:,}" for k, v in c["media"].items() if v) or "none"
    console.print(
        f"system prompts {c['system_prompts']:,} · with tools {c['with_tools']:,} · tool calls {c['tool_calls']:,}"
        f" · media: {media}" + (f" in {c['with_media']:,} samples" if c["with_media"] else "")
    )
    if c["kto_labels"]:
        k = c["kto_labels"]
        console.print(
            f"KTO labels: desirable {k['desirable']:,} ({_pct(k['desirable'], n)}) · "
            f"undesirable {k['undesirable']:,} ({_pct(k['undesirable'], n)})"
        )
    d = s["duplicates"]
    style = "yellow" if d["exact"] or d["near"] else ""
    line = f"duplicates: exact {d['exact']:,} ({_pct(d['exact'], n)}) · near {d['near']:,} ({_pct(d['near'], n)})"
    if d["near_examples"]:
        line += " · e.g. records " + ", ".join(f"{a}~{b}" for a, b in d["near_examples"][:3])
    if not d["complete"]:
        line += " (at least: more distinct samples than the index keeps, see docs/stats.md)"
    console.print(Text(line, style=style))
    letters = s["scripts"]["letters"]
    total_letters = sum(letters.values())
    mix = ", ".join(f"{k} {_pct(v, total_letters)}" for k, v in list(letters.items())[:6]) or "no letters"
    mains = ", ".join(f"{k} {v:,}" for k, v in s["scripts"]["samples"].items())
    console.print(Text(f"scripts (letters): {mix} · samples by main script: {mains}"))
    ch = s["characters"]
    console.print(f"characters: {_distribution_line(ch)}")
    t = s["tokens"]
    if t is None:
        console.print(histogram_table(ch, "characters"))
        return
    console.print(f"tokens: {_distribution_line(t)}")
    console.print(
        f"supervised {t['supervised_tokens']:,} of {t['total_tokens']:,} tokens ({_pct(t['supervised_tokens'], t['total_tokens'])})"
        f", by {t['supervised_method']}"
    )
    console.print(histogram_table(t, "tokens", t["cutoff_len"]))
    if t["cutoff_len"] is not None:
        line = (
            f"cutoff_len {t['cutoff_len']:,}: {t['over_cutoff']:,} of {n:,} samples ({_pct(t['over_cutoff'], n)}) over, "
            f"{t['supervised_lost']:,} supervised tokens cut (LLaMA-Factory's truncation)"
        )
        if t["all_supervised_lost"]:
            line += f"; {t['all_supervised_lost']:,} of them lose every supervised token"
        console.print(Text(line, style="yellow" if t["over_cutoff"] else "green"))
    if t["render_errors"]:
        index, message = t["first_render_error"]
        console.print(Text(f"{t['render_errors']:,} samples could not be rendered (first: record {index}: {message})", style="red"))
    for problem in s["mask_problems"]:
        console.print(Text(f"warning: {problem}", style="bold yellow"), soft_wrap=True)


def overview_table(entries: dict[str, dict[str, Any]]) -> Table:
    """One row per entry: records, kinds, lengths, cutoff overflow and duplicates."""
    tokens = any(s["tokens"] is not None for s in entries.values())
    table = Table(title="overview", title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for col in ("entry", "records", "kind", "median", "p95", "max"):
        table.add_column(col, justify="left" if col in ("entry", "kind") else "right", no_wrap=True)
    if tokens:
        table.add_column(">cutoff", justify="right", no_wrap=True)
    table.add_column("dup", justify="right", no_wrap=True)
    for name, s in entries.items():
        d = s["tokens"] or s["characters"]
        row = [Text(str(name)), f"{s['counts']['records']:,}", Text(" ".join(s["counts"]["kinds"])), f"{d['median']:,}", f"{d['p95']:,}", f"{d['max']:,}"]
        if tokens:
            t = s["tokens"]
            row.append("" if t is None or t["over_cutoff"] is None else f"{t['over_cutoff']:,}")
        row.append(f"{s['duplicates']['near']:,}")
        table.add_row(*row)
    table.caption = "lengths in " + ("tokens" if tokens else "characters") + "; dup: near duplicates"
    return table


PLOT_TYPES = (".png", ".svg", ".pdf")


def plot_type(path: str) -> str:
    """The image type of a ``--plot`` file, from its extension (exit 2 for any other).

    >>> plot_type("lengths.SVG")
    'svg'
    """
    import os.path

    from fmtkit.errors import FmtkitError

    ext = os.path.splitext(path)[1].lower()
    if ext not in PLOT_TYPES:
        raise FmtkitError(f"--plot {path}: the image type comes from its extension: {', '.join(PLOT_TYPES)}")
    return ext[1:]


def plot_lengths(path: str, entries: dict[str, dict[str, Any]], cutoff_len: int | None = None) -> None:
    """Write one image (type from the extension: :func:`plot_type`) with a length histogram per entry (tokens where counted, else characters)."""
    from fmtkit.writing import atomic_write

    kind = plot_type(path)
    try:
        import matplotlib
    except ModuleNotFoundError as exc:
        from fmtkit.errors import FmtkitError

        raise FmtkitError("--plot needs matplotlib: pip install matplotlib (or 'fmtkit[plot]')") from exc
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    names = list(entries)
    cols = min(3, len(names)) or 1
    rows = -(-len(names) // cols) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
    for ax in axes.flat[len(names) :]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names):
        s = entries[name]
        report = s["tokens"] or s["characters"]
        hist = report["histogram"]  # the bins the terminal shows
        if hist["counts"]:
            ax.stairs(hist["counts"], hist["edges"], fill=True, color="#3b82f6", edgecolor="white", linewidth=0.5)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        if s["tokens"] is not None and cutoff_len is not None:
            ax.axvline(cutoff_len, color="#dc2626", linestyle="--", label=f"cutoff_len {cutoff_len}")
            ax.legend(fontsize=7)
        ax.set_title(f"{name} ({report['samples']:,})", fontsize=9)
        ax.set_xlabel(report["unit"], fontsize=8)
        ax.set_ylabel("samples", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    try:
        with atomic_write(path) as fh:
            fig.savefig(fh, format=kind, dpi=110)
    finally:
        plt.close(fig)
