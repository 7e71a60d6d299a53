"""A sample as training sees it: the chat template's text, token by token, with the loss mask.

:func:`render_sample` returns the tokens (their text, their id, whether they
count in the loss); :func:`mask_problems` says what is wrong with the mask
before a training run finds out:

- the template has no ``{% generation %}`` markers, so assistant-only loss
  masks every token (TRL refuses it: "chat template is not training-compatible");
- the markers cover no token of this sample;
- the end-of-turn token after an answer (``<|im_end|>``, ``<|eot_id|>``, ...)
  is outside the loss, so the model is never trained to stop.

Example (``tokenizer``: any fast tokenizer with a chat template)::

    view = render_sample(tokenizer, sample)
    "".join(t.text for t in view.tokens if t.trained)   # the supervised text
    mask_problems(tokenizer, sample)                     # [] when the mask looks right
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fmtkit.errors import EXIT_FINDINGS, EXIT_USAGE, FmtkitError
from fmtkit.sample import Sample
from fmtkit.stats.conversation import sequences
from fmtkit.templates import has_generation_markers

# Tokens that end a turn in common templates (ChatML, Llama 3, Gemma, Phi, Mistral/Llama 2).
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "</s>", "<|endoftext|>")

NO_TEMPLATE = "the tokenizer has no chat template: pass --template (e.g. chatml)"
NO_MARKERS = (
    "the chat template has no {% generation %} markers: with assistant-only loss every token is masked "
    "and nothing is trained (TRL refuses it); use a template with markers (e.g. --template chatml)"
)
NOTHING_MARKED = "the template's generation markers cover no token of this sample: every token is masked"
EOT_OUTSIDE = (
    "the end-of-turn token {token!r} after an assistant answer is outside the loss: "
    "the model is never trained to stop; move it inside {{% generation %}}"
)


@dataclass(slots=True)
class Token:
    id: int
    text: str  # the slice of the rendered text this token covers ("" for a byte continuing the previous token)
    trained: bool


@dataclass(slots=True)
class RenderedSample:
    """The rendered text and its tokens; ``answer`` says which answer of a preference pair it shows."""

    text: str
    tokens: list[Token] = field(default_factory=list)
    kind: str = "sft"
    answer: str | None = None
    markers: bool = True

    @property
    def trained(self) -> int:
        return sum(t.trained for t in self.tokens)


@contextlib.contextmanager
def template_errors() -> Iterator[None]:
    """A chat template's own error as a clear message: exit 2 for a syntax error, 1 for one this sample raises."""
    import jinja2

    try:
        yield
    except jinja2.TemplateSyntaxError as exc:
        raise FmtkitError(f"the chat template has a syntax error at line {exc.lineno}: {exc.message}", EXIT_USAGE) from None
    except jinja2.TemplateError as exc:  # raise_exception(...), an undefined attribute...
        raise FmtkitError(f"the chat template failed on this sample: {exc}", EXIT_FINDINGS) from None


def render_sample(tokenizer: Any, sample: Sample, answer: str = "chosen") -> RenderedSample:
    """Render one sample with ``tokenizer``'s chat template; ``answer`` picks ``chosen`` or ``rejected`` of a pair.

    Assistant tokens are marked from the template's generation markers (all
    unmarked when it has none, as assistant-only loss would leave them);
    pretraining text is trained whole, a prompt-only sample not at all.
    """
    seqs = sequences(sample)
    kind = sample.kind
    markers = has_generation_markers(tokenizer.chat_template)
    if not seqs:
        return RenderedSample("", kind=kind, markers=markers)
    seq = seqs[1] if answer == "rejected" and len(seqs) > 1 else seqs[0]
    if seq.text is not None:
        text = seq.text + (tokenizer.eos_token or "")
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, mask = enc["input_ids"], [1] * len(enc["input_ids"])
        offsets = enc["offset_mapping"]
    else:
        kwargs = dict(tools=seq.tools or None, add_generation_prompt=seq.generation_prompt)
        use_mask = markers and not seq.generation_prompt
        with template_errors():
            text = tokenizer.apply_chat_template(seq.messages, tokenize=False, **kwargs)
            out = tokenizer.apply_chat_template(
                seq.messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=use_mask, **kwargs
            )
        ids = out["input_ids"]
        mask = out["assistant_masks"] if use_mask else [0] * len(ids)
        offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    tokens = []
    end = 0
    for token_id, trained, (a, b) in zip(ids, mask, offsets, strict=True):
        # Byte-level pieces of one character share its offsets: show the character once.
        tokens.append(Token(token_id, text[max(a, end) : b], bool(trained)))
        end = max(end, b)
    which = ("chosen" if seq is seqs[0] else "rejected") if kind == "preference" else None
    return RenderedSample(text, tokens, kind=kind, answer=which, markers=markers)


def _end_of_turn_ids(tokenizer: Any) -> dict[int, str]:
    ids: dict[int, str] = {}
    vocab = tokenizer.get_vocab()
    for token in END_OF_TURN + ((tokenizer.eos_token,) if tokenizer.eos_token else ()):
        if token in vocab:
            ids[vocab[token]] = token
    return ids


def mask_problems(tokenizer: Any, sample: Sample) -> list[str]:
    """What is wrong with the loss mask of ``sample`` under ``tokenizer``'s chat template ([] if nothing).

    Pretraining text and prompt-only samples have no answer to check.
    """
    if not tokenizer.chat_template:
        return [NO_TEMPLATE]
    kind = sample.kind
    if kind in ("pretrain", "prompt"):
        return []
    if not has_generation_markers(tokenizer.chat_template):
        return [NO_MARKERS]
    problems: list[str] = []
    eot = _end_of_turn_ids(tokenizer)
    for answer in ("chosen", "rejected") if kind == "preference" else ("chosen",):
        view = render_sample(tokenizer, sample, answer)
        if not view.tokens:
            continue
        if not view.trained:
            problems.append(NOTHING_MARKED)
            continue
        for i, tok in enumerate(view.tokens[:-1]):
            nxt = view.tokens[i + 1]
            # A trained run that ends right before an end-of-turn token leaves it out of the loss.
            if tok.trained and not nxt.trained and nxt.id in eot:
                problems.append(EOT_OUTSIDE.format(token=eot[nxt.id]))
                break
    return list(dict.fromkeys(problems))
