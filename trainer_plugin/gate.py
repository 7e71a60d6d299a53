"""The data gate: validate every dataset of a run for its stage before any model loads.

Training on data that LLaMA-Factory would silently drop rows of, or that has
the wrong shape for the stage, wastes a GPU hour and fails far from the cause.
So ``fmtkit train`` first runs fmtkit's validator on the entries it will read;
error-level findings stop the run (exit code 1) with the report.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from fmtkit.errors import EXIT_FINDINGS, FmtkitError


def is_main_process() -> bool:
    """Whether this is the process that prints (rank 0 under ``accelerate launch``)."""
    return os.environ.get("RANK", "0") == "0"


class DataGateError(FmtkitError):
    """The datasets have error-level findings for this stage."""

    def __init__(self, message: str):
        super().__init__(message, exit_code=EXIT_FINDINGS)


def check_datasets(dataset_dir: str | Path, entries: Iterable[str], stage: str, echo: Callable[[str], None]) -> None:
    """Validate ``entries`` of ``dataset_dir`` for ``stage``; raise :class:`DataGateError` on errors.

    With errors, the validator's human report is printed (on the main process);
    with warnings only, the run goes on and says how to see them.
    """
    from fmtkit.report import render
    from fmtkit.validation import validate

    entries = list(dict.fromkeys(entries))
    report = validate(Path(dataset_dir), entries=entries, stage=stage)
    summary = report.summary
    if report.has_errors:
        if is_main_process():
            render(report, "human")
        raise DataGateError(
            f"{summary['errors']} error(s) in the data for stage {stage} ({', '.join(entries)} in {dataset_dir}); "
            "fix them before training (no model was loaded)"
        )
    line = f"data checked for stage {stage}: {', '.join(entries)} ({summary['records']} records"
    if summary["warnings"]:
        line += f", {summary['warnings']} warning(s): see `fmtkit validate {dataset_dir} --stage {stage}`"
    echo(line + ")")
