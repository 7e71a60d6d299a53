"""What the real LLaMA-Factory trains on: every row of every entry, loaded and encoded, as one JSON document.

Run inside the environment made by ``scripts/setup-llamafactory.sh`` (not by
pytest; ``tests/test_differential.py`` runs it)::

    .venv-lf/bin/python tests/lf_train_probe.py JOB.json OUT.jsonl

``JOB.json``::

    {"dataset_dir": "...",
     "entries": {"NAME": {"stage": "sft" | "rm" | "kto" | "pt", "media": true | false}, ...},
     "extra": {"NAME": [aligned record or null, ...], ...}}

Each entry is loaded as ``lf_probe.py`` loads it (``get_dataset_list``,
``_load_single_dataset``: ``datasets`` then LLaMA-Factory's converter), then
each aligned row goes, alone, through the dataset processor of the entry's
stage (``SupervisedDatasetProcessor``, ``PairwiseDatasetProcessor``,
``FeedbackDatasetProcessor``, ``PretrainDatasetProcessor``) with the ``qwen``
template and the tiny Qwen tokenizer of ``tests/tiny_model.py``. For an entry
with a media column (``"media": true``) the template's plugin is LLaMA-Factory's
``BasePlugin`` counting placeholders against media (``_validate_messages``, as
every multimodal plugin does) and nothing else: no image is opened. The
``extra`` aligned records (a caller's own reading of the same rows, in
LLaMA-Factory's aligned layout) are encoded the same way.

Output: one line appended to ``OUT.jsonl`` per entry, in the job's order, as soon as it is done::

    {"name": "NAME", "error": "Type: message", "extra": [...]}                       # the entry does not load
    {"name": "NAME", "rows": [{"aligned": {...}, "encoded": E}, ...], "extra": [E or null, ...]}

where ``E`` is ``{"ids": {"input_ids": [...], "labels": [...], ...}}``,
``{"dropped": true}`` (the processor skips the row: "Dropped invalid example")
or ``{"error": "Type: message"}`` (the processor raises: the training run stops).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import sys
import tempfile
from pathlib import Path

from lf_probe import load, offline

STAGES = ("sft", "rm", "kto", "pt")
COLUMNS = ("_prompt", "_response", "_system", "_tools", "_images", "_videos", "_audios")


def _processors() -> dict:
    """stage -> (processor for text entries, processor for entries with media)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from llamafactory.data.mm_plugin import BasePlugin
    from llamafactory.data.processor import (
        FeedbackDatasetProcessor,
        PairwiseDatasetProcessor,
        PretrainDatasetProcessor,
        SupervisedDatasetProcessor,
    )
    from llamafactory.data.template import get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments
    from tiny_model import build_tokenizer

    class CountingPlugin(BasePlugin):
        """A multimodal plugin that only checks placeholders against media, as every real one does first."""

        def process_messages(self, messages, images, videos, audios, processor):
            self._validate_messages(messages, images, videos, audios)
            return messages

        def process_token_ids(self, input_ids, labels, images, videos, audios, tokenizer, processor):
            return input_ids, labels

    data_args = DataArguments(template="qwen", cutoff_len=1_000_000)
    tokenizer = build_tokenizer()
    template = get_template_and_fix_tokenizer(tokenizer, data_args)
    media_template = copy.copy(template)  # the registry's template object is shared: change a copy
    media_template.mm_plugin = CountingPlugin(image_token="<image>", video_token="<video>", audio_token="<audio>")
    kinds = {"sft": SupervisedDatasetProcessor, "rm": PairwiseDatasetProcessor, "kto": FeedbackDatasetProcessor, "pt": PretrainDatasetProcessor}
    return {
        stage: tuple(cls(template=t, tokenizer=tokenizer, processor=None, data_args=data_args) for t in (template, media_template))
        for stage, cls in kinds.items()
    }


def encode(processor, row: dict) -> dict:
    """One aligned row through one dataset processor: its ids, or dropped, or the error."""
    try:
        out = processor.preprocess_dataset({k: [row.get(k)] for k in COLUMNS})
    except Exception as err:  # noqa: BLE001  (a row that stops training is a finding, not a probe failure)
        return {"error": f"{type(err).__name__}: {err}"}
    if not any(out.values()):  # input_ids (chosen_input_ids for pairs) of no row
        return {"dropped": True}
    return {"ids": {k: v[0] for k, v in out.items() if k not in ("images", "videos", "audios")}}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    dataset_dir = os.path.abspath(job["dataset_dir"])
    # LLaMA-Factory's processors print to stdout (and log to stderr): results go to their own file.
    with (
        tempfile.TemporaryDirectory(prefix="lf-train-probe-") as cache,
        contextlib.redirect_stdout(sys.stderr),
        open(argv[1], "a", encoding="utf-8") as out,
    ):
        offline(cache)
        processors = _processors()
        for name, spec in job["entries"].items():
            processor = processors[spec["stage"]][1 if spec.get("media") else 0]
            extra = [None if r is None else encode(processor, r) for r in job.get("extra", {}).get(name, [])]
            rows = load(dataset_dir, [name], cache)[name]
            if isinstance(rows, dict):
                result = {"error": rows["error"], "extra": extra}
            else:
                result = {"rows": [{"aligned": r, "encoded": encode(processor, r)} for r in rows], "extra": extra}
            # one line per entry, written at once: a crash (pyarrow can die of SIGBUS) loses only the entry it was in
            out.write(json.dumps({"name": name, **result}, ensure_ascii=False, default=repr) + "\n")
            out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
