"""What LLaMA-Factory's own dataset processors make of whole entries, at given templates and cutoff lengths.

Run inside the LLaMA-Factory environment (``tests/test_train_parity_entries.py`` runs it)::

    .venv-lf/bin/python tests/lf_parity_probe.py JOB.json

``JOB.json``::

    {"dataset_dir": "...", "tokenizers": {"NAME": "folder", ...},
     "jobs": [{"entry": "...", "kind": "sft" | "sft_packed" | "pairwise" | "feedback" | "pt",
               "template": "qwen3", "tokenizer": "NAME", "cutoff_len": 64, "openai": false}, ...]}

Each entry is read as a training run reads it (``lf_probe.load``: ``get_dataset_list``, then
``_load_single_dataset``), then all its rows go, as one batch as ``dataset.map`` hands them, through the
processor of its kind (``SupervisedDatasetProcessor``, ``PackedSupervisedDatasetProcessor`` with
``packing: true`` (its ``cutoff_len - 1`` rule included), ``PairwiseDatasetProcessor``,
``FeedbackDatasetProcessor`` (its KL pairs too), ``PretrainDatasetProcessor`` with packing, as stage pt sets it) with
``DataArguments(template=..., cutoff_len=...)`` and the template that fixes the tokenizer
(``get_template_and_fix_tokenizer``); ``"openai": true`` first undoes its openai reader's
system-prompt quirk (:func:`without_openai_quirk`). Prints one JSON line: a list, in the jobs' order, of the
processor's output columns (``{"input_ids": [...], "labels": [...], ...}``) or ``{"error": ...}``.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from pathlib import Path

COLUMNS = ("_prompt", "_response", "_system", "_tools", "_images", "_videos", "_audios")
THINKING_OFF = "detailed thinking off"


def without_openai_quirk(row: dict) -> dict:
    """An aligned row of a ``formatting: openai`` entry with the system prompt as written in the record.

    LLaMA-Factory 0.9.5's openai reader appends "detailed thinking off" to the system prompt (the whole
    prompt when there is none), or a newline when the record has tools. fmtkit reads the record as
    written and flags the quirk (rule FMT119; ``tests/test_llamafactory_real.py`` checks the reader).
    Undoing it here compares what the processors do with the same conversation.
    """
    system, tools = row.get("_system") or "", row.get("_tools")
    if not tools and system == THINKING_OFF:
        system = ""
    elif not tools and system.endswith("\n" + THINKING_OFF):
        system = system[: -len(THINKING_OFF) - 1]
    elif tools and system.endswith("\n"):
        system = system[:-1]
    return {**row, "_system": system}


def main(job_path: str) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from lf_probe import load, offline

    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    results = []
    with tempfile.TemporaryDirectory(prefix="lf-parity-") as cache, contextlib.redirect_stdout(sys.stderr):
        offline(cache)
        from llamafactory.data.processor import (
            FeedbackDatasetProcessor,
            PackedSupervisedDatasetProcessor,
            PairwiseDatasetProcessor,
            PretrainDatasetProcessor,
            SupervisedDatasetProcessor,
        )
        from llamafactory.data.template import get_template_and_fix_tokenizer
        from llamafactory.hparams import DataArguments
        from transformers import AutoTokenizer

        kinds = {
            "sft": SupervisedDatasetProcessor,
            "sft_packed": PackedSupervisedDatasetProcessor,
            "pairwise": PairwiseDatasetProcessor,
            "feedback": FeedbackDatasetProcessor,
            "pt": PretrainDatasetProcessor,
        }
        rows = load(job["dataset_dir"], sorted({j["entry"] for j in job["jobs"]}), cache)
        templates: dict[tuple[str, str], tuple] = {}
        for j in job["jobs"]:
            key = (j["template"], j["tokenizer"])
            if key not in templates:  # the template fixes the tokenizer (its EOS): one tokenizer per template
                tokenizer = AutoTokenizer.from_pretrained(job["tokenizers"][j["tokenizer"]])
                templates[key] = tokenizer, get_template_and_fix_tokenizer(tokenizer, DataArguments(template=j["template"]))
            tokenizer, template = templates[key]
            if j["kind"] == "sft_packed":  # packing: true in the config: DataArguments cuts at cutoff_len - 1
                data_args = DataArguments(template=j["template"], cutoff_len=j["cutoff_len"], packing=True)
            else:
                data_args = DataArguments(template=j["template"], cutoff_len=j["cutoff_len"])
                data_args.packing = j["kind"] == "pt"  # as LLaMA-Factory's parser sets it for stage pt (after the -1 rule)
            processor = kinds[j["kind"]](template=template, tokenizer=tokenizer, processor=None, data_args=data_args)
            entry = rows[j["entry"]]
            try:
                if isinstance(entry, dict):
                    raise RuntimeError(entry["error"])
                if j.get("openai"):
                    entry = [without_openai_quirk(r) for r in entry]
                out = processor.preprocess_dataset({k: [r.get(k) for r in entry] for k in COLUMNS})
                results.append({k: v for k, v in out.items() if k not in ("images", "videos", "audios")})
            except Exception as err:  # noqa: BLE001  (reported to the test, job by job)
                results.append({"error": f"{type(err).__name__}: {err}"})
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
