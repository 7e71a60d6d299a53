"""``fmtkit render``: the click shell over :func:`fmtkit.stats.render_sample` and :func:`fmtkit.stats.mask_problems`."""

from __future__ import annotations

import click

from fmtkit.templates import TEMPLATES


@click.command("render")
@click.argument("source", type=click.Path(path_type=str))
@click.option("--tokenizer", "tokenizer_path", required=True, help="The tokenizer (a model folder) whose chat template renders the sample.")
@click.option("--entry", help="The dataset name (needed when the folder has several).")
@click.option("--index", type=click.IntRange(0), default=0, show_default=True, help="Which record (0-based).")
@click.option("--template", help=f"Chat template, as `fmtkit train`'s `template:` takes it: {', '.join(TEMPLATES)} or a .jinja file (default: the tokenizer's).")
@click.option("--rejected", is_flag=True, help="Show the rejected answer of a preference pair instead of the chosen one.")
@click.option("--cutoff-len", type=click.IntRange(1), help="Warn when the sample (image tokens included) is longer than this many tokens.")
def render(source, tokenizer_path, entry, index, template, rejected, cutoff_len):
    """Show one sample of SOURCE as training sees it after the chat template.

    Tokens that count in the loss are highlighted (alternating shades mark
    token boundaries); the rest is dimmed. Without colours (a pipe, NO_COLOR)
    the trained text is bracketed: ⟦trained⟧. Warns when the template masks every
    token or leaves the end-of-turn token out of the loss.

    \b
    With a vision-language model folder (Qwen2-VL...), its processor renders
    the sample: each <image> becomes the image tokens the processor expands it
    to, counted in the totals and never trained.

    \b
    Examples:
      fmtkit render dataset/ --entry sharegpt_demo --tokenizer models/qwen
      fmtkit render data.jsonl --tokenizer models/qwen --index 3 --template chatml
      fmtkit render dataset/ --entry sharegpt_mm_demo --tokenizer models/qwen2-vl --cutoff-len 1024
    """
    from rich.text import Text

    from fmtkit.sources import resolve
    from fmtkit.errors import FmtkitError
    from fmtkit.report.terminal import console as safe_console
    from fmtkit.stats.render import mask_problems, render_sample
    from fmtkit.stats.source import read_entry
    from fmtkit.stats.tokenizer import load_tokenizer

    # The entry as `fmtkit convert` finds it (fmtkit.entries.load_entry): the same messages for the same mistakes.
    found = resolve(source, entry)
    name = found.entry.name if found.info_dir is not None else None
    samples, _ = read_entry(source, name)
    if index >= len(samples):
        raise FmtkitError(f"--index {index}: the entry has {len(samples)} samples")
    sample = samples[index]
    answer = "rejected" if rejected else "chosen"
    from fmtkit.models.vision import is_vision_model

    processor = None
    if is_vision_model(tokenizer_path):
        from fmtkit.models.vision import counting_processor, render_vision_sample

        processor = counting_processor(tokenizer_path, template)
        view = render_vision_sample(processor, sample, found.base_dir, answer)
        tokenizer = processor.tokenizer
    else:
        tokenizer = load_tokenizer(tokenizer_path, template)
        view = render_sample(tokenizer, sample, answer)

    console = safe_console(highlight=False)
    body = Text()
    # Without colours (a pipe, NO_COLOR), trained runs are bracketed instead: ⟦trained⟧.
    plain = console.color_system is None or console.no_color  # NO_COLOR in a terminal: no styles, so brackets
    for i, token in enumerate(view.tokens):
        prev = view.tokens[i - 1].trained if i else False
        if plain and token.trained != prev:
            body.append("⟦" if token.trained else "⟧")
        if token.trained:
            body.append(token.text, style="bold black on green" if i % 2 else "bold black on bright_green")
        else:
            body.append(token.text, style="dim" if i % 2 else "dim italic")
    if plain and view.tokens and view.tokens[-1].trained:
        body.append("⟧")
    label = f"{name or source} #{index} ({view.kind}" + (f", {view.answer} answer" if view.answer else "") + ")"
    console.rule(Text(label), align="left")  # a Text: an entry name is never read as markup
    console.print(body, end="" if view.text.endswith("\n") else "\n")
    console.rule()
    n = len(view.tokens)
    images = [i for i, t in enumerate(view.tokens) if processor is not None and t.id == processor.image_token_id]
    console.print(
        f"{n:,} tokens, {view.trained:,} in the loss ({100 * view.trained / n if n else 0:.1f}%), {n - view.trained:,} masked"
        + (f"; {len(images):,} image tokens" if processor is not None else "")
    )
    if cutoff_len is not None and n > cutoff_len:
        lost = sum(t.trained for t in view.tokens[cutoff_len:])
        line = f"warning: {n:,} tokens exceed --cutoff-len {cutoff_len}: {lost:,} trained tokens are cut off"
        if images and images[-1] >= cutoff_len:
            line += "; an image's tokens do not fit, and fmtkit train drops the sample"
        console.print(Text(line, style="bold yellow"), soft_wrap=True)
    for problem in (mask_problems(tokenizer, sample) if processor is None else []):
        console.print(Text(f"warning: {problem}", style="bold yellow"), soft_wrap=True)
