"""LoRA SFT throughput through ``fmtkit train``'s own path and LLaMA-Factory's, on a GPU (bf16) or, with ``--tiny``, the CPU.

It writes a synthetic ShareGPT dataset folder (every turn the same number of
words, so every micro-batch has the same length in both tools whatever order
each draws them in), builds the run's config in LLaMA-Factory's keys, and calls
:func:`trainer_plugin.run.train` (validation gate, fmtkit.read, TRL's
SFTTrainer with assistant-only loss), timing every optimizer step. Then, with
``--lf-python`` (default: ``.venv-lf/bin/python`` in the repository; with
``--tiny``, only when given), it runs ``llamafactory-cli train`` on the same config, data and
seed in that environment, timing each step from its ``trainer_log.jsonl``.
It prints, side by side: steps/s and tokens/s over the steps after
``--warmup`` (LLaMA-Factory's tokens/s: fmtkit's tokens per step, the same
batches, times its steps/s), time to the end of the first step, peak GPU
memory (fmtkit's), and the first and last loss.

    # a real model folder (no hub access is needed or tried)
    python bench/gpu_lora_sft.py --model models/Qwen3-0.6B --template qwen3 --steps 40
    # no model at hand: a Qwen3-0.6B-shaped model with random weights
    python bench/gpu_lora_sft.py --random qwen3-0.6b --steps 40
    # smoke check of the same path on the CPU with the tests' tiny model
    python bench/gpu_lora_sft.py --tiny [--lf-python .venv-lf/bin/python]
    # fmtkit only (no LLaMA-Factory environment)
    python bench/gpu_lora_sft.py --random qwen3-0.6b --lf-python ''

Exit code 0 when every logged loss is finite.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_train import LF_PYTHON, run_llamafactory  # noqa: E402  (LLaMA-Factory's side, as the CPU benchmark runs it)

# Shapes of public Qwen3 checkpoints, for --random (weights are random: throughput only).
RANDOM_SHAPES = {
    "qwen3-0.6b": dict(
        hidden_size=1024,
        intermediate_size=3072,
        num_hidden_layers=28,
        num_attention_heads=16,
        num_key_value_heads=8,
        head_dim=128,
        tie_word_embeddings=True,
    ),
    "qwen3-1.7b": dict(
        hidden_size=2048,
        intermediate_size=6144,
        num_hidden_layers=28,
        num_attention_heads=16,
        num_key_value_heads=8,
        head_dim=128,
        tie_word_embeddings=True,
    ),
    "qwen3-4b": dict(
        hidden_size=2560,
        intermediate_size=9728,
        num_hidden_layers=36,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=128,
        tie_word_embeddings=True,
    ),
}
QWEN_VOCAB = 151936
WORDS = (
    "model data token train loss batch answer question paris france tiger grass weather city layer "
    "learning rate adapter merge export template system user assistant tool value gradient step"
).split()


def _tiny_model_module():
    spec = importlib.util.spec_from_file_location("tiny_model", ROOT / "tests" / "tiny_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_random_model(shape: str, directory: Path) -> Path:
    """A Qwen3 model of a public checkpoint's shape with random weights, and the tiny test tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen3Config

    tokenizer = _tiny_model_module().build_tokenizer()
    config = Qwen3Config(
        vocab_size=QWEN_VOCAB,
        max_position_embeddings=32768,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **RANDOM_SHAPES[shape],
    )
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def write_dataset(directory: Path, records: int, words_per_turn: int, seed: int) -> None:
    """A ShareGPT dataset folder of synthetic two-turn conversations of ``words_per_turn`` words a turn."""
    rng = random.Random(seed)

    def text() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(words_per_turn))

    with open(directory / "synthetic.jsonl", "w", encoding="utf-8") as f:
        for _ in range(records):
            turns = [{"from": "human", "value": text()}, {"from": "gpt", "value": text()}] * 2
            f.write(json.dumps({"conversations": turns}) + "\n")
    info = {"synthetic": {"file_name": "synthetic.jsonl", "formatting": "sharegpt"}}
    (directory / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")


def run_keys(model_path: Path, data_dir: Path, output_dir: str, args: argparse.Namespace, steps: int, batch: int,
             seq_len: int) -> dict:
    """The run's config in LLaMA-Factory's keys, which both ``fmtkit train`` and ``llamafactory-cli train`` read."""
    return {
        "model_name_or_path": str(model_path),
        "stage": "sft",
        "do_train": True,
        "finetuning_type": "lora",
        "lora_rank": args.lora_rank,
        "lora_target": "all",
        "dataset": "synthetic",
        "dataset_dir": str(data_dir),
        "template": args.template,
        "cutoff_len": seq_len,
        "output_dir": output_dir,
        "per_device_train_batch_size": batch,
        "max_steps": steps,
        "learning_rate": 1e-4,
        "lr_scheduler_type": "constant",
        "logging_steps": 1,  # LLaMA-Factory's step times are read from its log: one line per step in both
        "save_strategy": "no",
        "seed": 0,
        "report_to": "none",
        "bf16": not args.tiny,  # the CPU smoke check in float32 (LLaMA-Factory refuses bf16 without a GPU)
        "disable_gradient_checkpointing": not args.checkpointing,
    }  # fmt: skip


def run_llamafactory_side(args: argparse.Namespace, keys: dict, work: Path, warmup: int) -> dict:
    """``llamafactory-cli train`` on ``keys`` in LLaMA-Factory's environment (bench_train's runner)."""
    import yaml

    config_file = work / "lf.yaml"
    config_file.write_text(yaml.safe_dump({**keys, "output_dir": str(work / "lf"), "overwrite_output_dir": True}))
    env = {**os.environ, "DISABLE_VERSION_CHECK": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}
    return run_llamafactory(args.lf_python, config_file, work / "lf", env, args.lf_timeout, warmup)


def step_timer():
    """A TrainerCallback recording (wall time, tokens seen) at the start of training and the end of every optimizer step."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.marks: list[tuple[float, int]] = []

        def _sync(self):
            import torch

            if torch.cuda.is_available():
                torch.cuda.synchronize()

        def on_train_begin(self, args, state, control, **kwargs):
            self._sync()
            self.marks = [(time.time(), 0)]

        def on_step_end(self, args, state, control, **kwargs):
            self._sync()
            self.marks.append((time.time(), int(state.num_input_tokens_seen or 0)))

    return StepTimer()


def main(argv: list[str] | None = None) -> int:
    start = time.time()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="local model folder")
    source.add_argument(
        "--random", choices=sorted(RANDOM_SHAPES), help="random weights of this shape (throughput only)"
    )
    source.add_argument("--tiny", action="store_true", help="CPU smoke check with the tests' tiny model")
    parser.add_argument("--template", default="chatml", help="chat template name (default chatml)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps (default 40; 4 with --tiny)")
    parser.add_argument(
        "--warmup", type=int, default=None, help="steps left out of the throughput, at least 1 (default 5; 1 with --tiny)"
    )
    parser.add_argument("--batch-size", type=int, default=None, help="per-device batch (default 8; 2 with --tiny)")
    parser.add_argument("--seq-len", type=int, default=None, help="cutoff_len (default 1024; 128 with --tiny)")
    parser.add_argument("--lora-rank", type=int, default=16)
    parser.add_argument(
        "--checkpointing", action="store_true", help="keep activation checkpointing on (slower, less memory)"
    )
    parser.add_argument(
        "--lf-python",
        default=None,
        help=f"python of LLaMA-Factory's environment ('' to skip; default {LF_PYTHON}, none with --tiny)",
    )
    parser.add_argument("--lf-timeout", type=float, default=1800, help="seconds LLaMA-Factory's run may take")
    parser.add_argument("--output", default=str(ROOT / "bench" / "out" / "gpu_lora_sft"), help="output_dir of the run")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--dry-run", action="store_true", help="print the config both tools would run, and stop")
    args = parser.parse_args(argv)

    tiny = args.tiny
    steps = args.steps or (4 if tiny else 40)
    warmup = args.warmup if args.warmup is not None else (1 if tiny else 5)
    batch = args.batch_size or (2 if tiny else 8)
    seq_len = args.seq_len or (128 if tiny else 1024)
    if not 1 <= warmup < steps:
        parser.error("--warmup must be at least 1 and smaller than --steps")
    if args.lf_python is None:  # the CPU smoke check runs fmtkit alone unless asked
        args.lf_python = "" if tiny else LF_PYTHON
    if args.dry_run:
        model = args.model or f"(random {args.random})" if not tiny else "(tiny)"
        keys = run_keys(Path(model), Path("(synthetic data)"), args.output, args, steps, batch, seq_len)
        print(json.dumps({"config": keys, "warmup": warmup, "lf_python": args.lf_python or None}, indent=2))
        return 0
    if tiny:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(name, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import torch

    from trainer_plugin.config import load_config
    from trainer_plugin.run import train

    work = Path(tempfile.mkdtemp(prefix="fmtkit-bench-"))
    try:
        if tiny:
            torch.set_num_threads(1)
            model_path = _tiny_model_module().build_tiny_model(work / "model")
        elif args.random:
            model_path = build_random_model(args.random, work / "model")
        else:
            model_path = Path(args.model)
        data_dir = work / "data"
        data_dir.mkdir()
        # ~1.3 tokens per word with a real tokenizer; enough records for every step, no repeats.
        write_dataset(data_dir, records=steps * batch, words_per_turn=max(8, seq_len // 6), seed=0)
        keys = run_keys(model_path, data_dir, args.output, args, steps, batch, seq_len)
        config, notes = load_config(keys)
        timer = step_timer()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        summary = train(config, notes, callbacks=[timer])
        peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
        lf = {}
        if args.lf_python:
            import gc

            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            lf = run_llamafactory_side(args, keys, work, warmup)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    (t0, tok0), (t1, tok1) = timer.marks[warmup], timer.marks[-1]
    measured = len(timer.marks) - 1 - warmup
    tokens_per_step = (tok1 - tok0) / max(1, measured)
    results = {
        "device": summary.device,
        "model": str(args.model or args.random or "tiny"),
        "steps": summary.global_step,
        "measured_steps": measured,
        "batch_size": batch,
        "seq_len": seq_len,
        "lora_rank": args.lora_rank,
        "tokens_per_second": round((tok1 - tok0) / (t1 - t0), 1) if t1 > t0 else 0.0,
        "steps_per_second": round(measured / (t1 - t0), 3) if t1 > t0 else 0.0,
        "seconds_per_step": round((t1 - t0) / max(1, measured), 4),
        "tokens_per_step": round(tokens_per_step, 1),
        "first_step_s": round(timer.marks[1][0] - start, 2),  # from the start of this script, as LLaMA-Factory's from its process
        "peak_gpu_memory_gib": round(peak, 2) if peak is not None else None,
        "first_loss": summary.losses[0]["loss"] if summary.losses else None,
        "last_loss": summary.losses[-1]["loss"] if summary.losses else None,
        "train_loss": summary.train_loss,
    }
    if lf.get("steps_per_s"):
        lf["tokens_per_s"] = round(tokens_per_step * lf["steps_per_s"], 1)
    results["llamafactory"] = lf or None
    print(json.dumps(results, indent=2))
    print(f"LoRA SFT on {summary.device}, batch {batch}, cutoff_len {seq_len}, {steps} steps ({warmup} warm-up)")
    print(f"{'run':<14} {'steps/s':>9} {'tokens/s':>10} {'first step (s)':>15}")
    print(f"{'fmtkit':<14} {results['steps_per_second']:>9.3f} {results['tokens_per_second']:>10,.0f} {results['first_step_s']:>15.1f}")
    if "error" in lf:
        print(f"{'llamafactory':<14} did not run: {lf['error'].strip().splitlines()[-1] if lf['error'].strip() else '?'}")
    elif lf:
        print(f"{'llamafactory':<14} {lf['steps_per_s'] or 0:>9.3f} {lf.get('tokens_per_s', 0):>10,.0f} {lf['first_step_s']:>15.1f}")
        if lf.get("steps_per_s") and results["steps_per_second"]:
            print(f"fmtkit / llamafactory: {results['steps_per_second'] / lf['steps_per_s']:.2f}x steps/s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    finite = summary.losses_finite and summary.train_loss is not None and math.isfinite(summary.train_loss)
    return 0 if finite else 1


if __name__ == "__main__":
    sys.exit(main())
