#!/usr/bin/env bash
# Creates .venv-lf: the real LLaMA-Factory 0.9.5, for the optional test
# tests/test_llamafactory_real.py (it compares fmtkit's conversions with what
# LLaMA-Factory's own dataset loader and converters read).
#
# LLaMA-Factory cannot share .venv: it pins transformers<=5.6, trl<=0.24,
# datasets<=4.0 and requires torchvision/torchaudio (unpinned, pip fetches a
# multi-GB CUDA torch). So it gets its own environment, holding only what the
# import chain of llamafactory.data (parser, converter, loader) and
# llamafactory.hparams really needs, within LLaMA-Factory's own version pins:
#   - torch, held at 2.13.0 (the CPU build here) by a constraints file, so no
#     later install can swap it for another build;
#   - llamafactory itself with --no-deps (its full list drags gradio, fastapi,
#     torchvision, modelscope, av, matplotlib, ...);
#   - transformers, datasets, peft, trl (llamafactory.hparams checks its
#     version at import time) with their own deps, torchaudio (imported
#     unconditionally by llamafactory.data.mm_plugin; its compiled CUDA
#     extensions are removed, see below), omegaconf (imported by
#     llamafactory.hparams). gradio, torchvision, av, modelscope, ... are not
#     needed to load and convert datasets.
# Re-running it is fine: pip leaves satisfied requirements alone.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-lf
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip)
CONSTRAINTS="$VENV/constraints.txt"
printf 'torch==2.13.0\n' >"$CONSTRAINTS"

"${PIP[@]}" install -q --upgrade pip
"${PIP[@]}" install -q -c "$CONSTRAINTS" torch==2.13.0
# Pins below are LLaMA-Factory 0.9.5's own (its package metadata and
# extras/misc.py check_dependencies); torchaudio 2.11.1 declares torch>=2.11.
"${PIP[@]}" install -q -c "$CONSTRAINTS" \
  'transformers>=4.55.0,<=5.6.0,!=4.52.0,!=4.57.0' \
  'datasets>=2.16.0,<=4.0.0' \
  'peft>=0.18.0,<=0.18.1' \
  'accelerate>=1.3.0,<=1.11.0' \
  'trl>=0.18.0,<=0.24.0' \
  'torchaudio>=2.4.0' \
  omegaconf
# PyPI has no CPU torchaudio: its compiled extensions link CUDA libraries
# (libc10_cuda.so) and fail to load with the CPU torch. torchaudio imports
# without them (it treats absent extension files as "not available"), and the
# dataset code never decodes audio, so drop them.
rm -f "$VENV"/lib/python3*/site-packages/torchaudio/lib/*.so
# Last, so that pip does not list every dependency of it that is left out.
"${PIP[@]}" install -q --no-deps llamafactory==0.9.5

# Smoke test: the pieces the probe (tests/lf_probe.py) uses import and work.
"$VENV/bin/python" - <<'EOF'
import torch
from llamafactory.data.converter import get_dataset_converter
from llamafactory.data.loader import _load_single_dataset
from llamafactory.data.parser import get_dataset_list
from llamafactory.hparams import DataArguments
import llamafactory

assert torch.__version__.startswith("2.13.0"), torch.__version__
print(f"llamafactory {llamafactory.__version__} ready (torch {torch.__version__})")
EOF
