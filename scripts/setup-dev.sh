#!/usr/bin/env bash
# Creates .venv with fmtkit, its training stack and the test tools.
# torch is installed first and pinned: unpinned, pip fetches a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q torch==2.13.0
python -m pip install -q -e '.[train,hub,test]'
