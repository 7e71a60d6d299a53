"""Shared test setup: offline mode everywhere, one thread, and the tiny model fixture."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# No test may reach a hub, and a busy 2-core machine runs small models fastest on one thread.
for _name, _value in {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "OMP_NUM_THREADS": "1",
    "TRL_EXPERIMENTAL_SILENCE": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
}.items():
    os.environ.setdefault(_name, _value)

sys.path.insert(0, str(Path(__file__).parent))  # tests/tiny_model.py is importable as `tiny_model`


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen3-style model + tokenizer (ChatML template with generation markers), saved once per session."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tiny_model import build_tiny_model

    torch.set_num_threads(1)
    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))
