"""fmtkit: validate, convert and train on LLM fine-tuning datasets.

The library is the product; the ``fmtkit`` command is a thin shell over it::

    import fmtkit
    report = fmtkit.validate("dataset/")
    for finding in report.findings:
        print(finding.code, finding.file, finding.line, finding.message)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["validate", "convert", "read", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from fmtkit.conversion import convert
    from fmtkit.sources import read
    from fmtkit.validation import validate

_LAZY = {"validate": "fmtkit.validation", "convert": "fmtkit.conversion", "read": "fmtkit.sources"}


def __getattr__(name: str) -> Any:
    # Lazy so that `import fmtkit` stays cheap for every command.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fmtkit' has no attribute {name!r}")
