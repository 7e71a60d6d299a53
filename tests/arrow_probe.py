"""Whether the real ``datasets`` loads sets of JSON / JSON Lines files: one JSON document on stdout.

Run inside an environment that has ``datasets`` (not by pytest;
``tests/test_arrow_types.py`` runs it, in ``.venv`` and in the LLaMA-Factory
environment)::

    python tests/arrow_probe.py < cases.json

Input on stdin: ``{case: [file path, ...]}``. Each case's files are loaded as
LLaMA-Factory loads a local entry: ``datasets.load_dataset("json",
data_files=[files], split="train")`` (a folder entry passes every file of the
folder, in ``os.listdir`` order; here in the order given), with a fresh cache
each time. Output: ``{"datasets": version, "cases": {case: verdict}}``
where a verdict is ``{"ok": true, "features": str}`` (with ``"rows"``, the
records as loaded, for files under 64 kB) or ``{"ok": false, "error": "Type:
message"}``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

SMALL = 64 << 10


def main() -> int:
    cases = json.load(sys.stdin)
    with tempfile.TemporaryDirectory(prefix="arrow-probe-") as work:
        os.environ.update(HF_HOME=work, HF_DATASETS_CACHE=os.path.join(work, "cache"), HF_HUB_OFFLINE="1",
                          HF_DATASETS_OFFLINE="1", HF_DATASETS_DISABLE_PROGRESS_BARS="1")  # fmt: skip
        import datasets

        datasets.logging.set_verbosity(datasets.logging.CRITICAL)
        out = {}
        for n, (name, paths) in enumerate(cases.items()):
            try:
                ds = datasets.load_dataset("json", data_files=paths, split="train", cache_dir=os.path.join(work, f"cache{n}"))
                out[name] = {"ok": True, "features": str(ds.features)}
                if sum(os.path.getsize(p) for p in paths) < SMALL:
                    out[name]["rows"] = ds.to_list()
            except Exception as err:  # noqa: BLE001  (the verdict is what is wanted)
                cause = err.__cause__ or err.__context__
                detail = f" <- {type(cause).__name__}: {cause}" if cause is not None else ""
                out[name] = {"ok": False, "error": f"{type(err).__name__}: {err}{detail}"[:600]}
    json.dump({"datasets": datasets.__version__, "cases": out}, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
