"""What the real LLaMA-Factory reads from entries of a dataset folder: one JSON document on stdout.

Run inside the environment made by ``scripts/setup-llamafactory.sh`` (not by
pytest; ``tests/test_llamafactory_real.py`` runs it)::

    .venv-lf/bin/python tests/lf_probe.py DATASET_DIR ENTRY [ENTRY...]

Each entry goes through LLaMA-Factory's own code, as a training run would load
it: ``get_dataset_list`` reads ``DATASET_DIR/dataset_info.json`` into a
``DatasetAttr``, ``DataArguments(dataset_dir=DATASET_DIR)`` sets ``media_dir``,
and ``_load_single_dataset`` loads the data file(s) with ``datasets`` (Arrow:
every row gets every column, nested objects get the union of their keys) and
maps every row through ``get_dataset_converter(attr.formatting, ...)``.

Output: ``{entry: [aligned record, ...]}`` in file order, where an aligned
record is the converter's output (``_prompt``, ``_response``, ``_system``,
``_tools``, ``_images``, ``_videos``, ``_audios``) unchanged except that media
paths LLaMA-Factory joined with ``media_dir`` are printed relative to
DATASET_DIR, and paths it could not find (it then keeps them as written) as
``{"unresolved": path}``. An entry LLaMA-Factory fails to load gives
``{"error": "Type: message"}`` instead of a list.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from types import SimpleNamespace


def _media(value, dataset_dir: str):
    if value is None:
        return None
    if isinstance(value, list):
        return [_media(v, dataset_dir) for v in value]
    if isinstance(value, str):
        # The converter replaced the path with os.path.join(media_dir, path) when that file exists.
        if os.path.isabs(value) and os.path.isfile(value):
            return os.path.relpath(os.path.normpath(value), dataset_dir)
        return {"unresolved": value}
    return {"not a path": repr(value)}


def offline(cache: str) -> None:
    """Nothing from the network, nothing cached outside ``cache``."""
    os.environ.update(
        HF_HOME=cache, HF_DATASETS_CACHE=os.path.join(cache, "datasets"), HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_DISABLE_PROGRESS_BARS="1",
        TOKENIZERS_PARALLELISM="false", LLAMAFACTORY_VERBOSITY="WARN",
    )  # fmt: skip


def load(dataset_dir: str, entries: list[str], cache: str) -> dict[str, object]:
    """``{entry: [aligned record, ...] or {"error": ...}}``, as described above (call :func:`offline` first)."""
    from llamafactory.data.loader import _load_single_dataset
    from llamafactory.data.parser import get_dataset_list
    from llamafactory.hparams import DataArguments

    data_args = DataArguments(dataset_dir=dataset_dir)  # media_dir defaults to dataset_dir
    # _load_single_dataset reads only these of the model and training arguments for local files.
    model_args = SimpleNamespace(cache_dir=os.path.join(cache, "datasets"), hf_hub_token=None)
    training_args = SimpleNamespace(local_process_index=0, dataloader_num_workers=0)
    out: dict[str, object] = {}
    for name in entries:
        try:
            (attr,) = get_dataset_list([name], dataset_dir)
            aligned = _load_single_dataset(attr, model_args, data_args, training_args)
            records = []
            for row in aligned:
                row = dict(row)
                for key in ("_images", "_videos", "_audios"):
                    row[key] = _media(row.get(key), dataset_dir)
                records.append(row)
            out[name] = records
        except Exception as err:  # noqa: BLE001  (reported to the test, entry by entry)
            out[name] = {"error": f"{type(err).__name__}: {err}"}
    return out


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    dataset_dir = os.path.abspath(argv[0])
    with tempfile.TemporaryDirectory(prefix="lf-probe-") as cache:
        offline(cache)
        out = load(dataset_dir, argv[1:], cache)
    json.dump(out, sys.stdout, ensure_ascii=False, default=repr)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
