"""Scale-out that is tested: ``accelerate launch`` with the shipped CPU config starts 2 training processes.

Each rank records the samples of its data shard and a checksum of its trained
weights; the shards must be disjoint and cover the data, and every rank must
end with the weights rank 0 saved (DDP keeps them in sync).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_train_cli import config, data_dir  # noqa: F401 - fixtures

pytestmark = [pytest.mark.train, pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing")]
pytest.importorskip("trl")
pytest.importorskip("accelerate")

ROOT = Path(__file__).resolve().parents[1]

DRIVER = r'''
import json, os, sys
from transformers import TrainerCallback
from trainer_plugin.config import load_config, read_yaml
from trainer_plugin.run import load_tokenizer, train
from trainer_plugin.stages import get_stage

rank = int(os.environ["RANK"])
config, notes = load_config(read_yaml(sys.argv[1]))
tokenizer = load_tokenizer(config, get_stage("sft"), echo=lambda _: None)
seen = {"rank": rank, "world_size": int(os.environ["WORLD_SIZE"])}

class Record(TrainerCallback):
    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
        seen["samples"] = [
            tokenizer.decode([t for t in row.tolist() if t != tokenizer.pad_token_id])
            for batch in train_dataloader for row in batch["input_ids"]
        ]

    def on_train_end(self, args, state, control, model=None, **kwargs):
        trained = [p for p in model.parameters() if p.requires_grad]
        seen["weights_sum"] = float(sum(p.detach().double().sum() for p in trained))
        with open(os.path.join(sys.argv[2], f"rank{rank}.json"), "w") as f:
            json.dump(seen, f)

train(config, notes, callbacks=[Record()])
'''


def test_two_cpu_processes_train_distinct_shards_into_one_adapter(config, tmp_path):
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    assert accelerate is not None, "the train extra installs accelerate and its command beside this python"
    # 8 samples, 2 per batch on each of 2 processes: 2 steps are one epoch
    path, out = config(stage="sft", dataset="alpaca_sft", max_steps=2, per_device_train_batch_size=2)
    records = tmp_path / "ranks"
    records.mkdir()
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [accelerate, "launch", "--config_file", str(ROOT / "examples" / "accelerate" / "ddp_cpu.yaml"), str(driver),
         str(path), str(records)],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    ranks = [json.loads((records / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    shards = [set(r["samples"]) for r in ranks]
    assert len(ranks[0]["samples"]) == len(ranks[1]["samples"]) == 4
    assert not shards[0] & shards[1] and len(shards[0] | shards[1]) == 8  # distinct shards covering the data
    assert run.stdout.count("training 2 steps: batch 2 x 1 accumulation x 2 device(s)") == 1  # rank 0 prints
    from safetensors.torch import load_file

    saved = sum(float(t.double().sum()) for t in load_file(out / "adapter_model.safetensors").values())
    assert ranks[0]["weights_sum"] == pytest.approx(ranks[1]["weights_sum"], rel=1e-9)  # in sync
    assert saved == pytest.approx(ranks[0]["weights_sum"], rel=1e-6)  # what rank 0 saved
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["status"] == "completed" and summary["global_step"] == 2
