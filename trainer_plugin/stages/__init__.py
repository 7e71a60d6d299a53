"""Training stages, one module each, over the shared core in :mod:`.base`.

A new stage is one module defining ``STAGE`` plus one line in :data:`STAGE_MODULES`.
Modules are imported only when their stage runs (they import TRL).

>>> sorted(STAGE_MODULES)
['dpo', 'kto', 'orpo', 'pt', 'rm', 'sft', 'simpo']
"""

from __future__ import annotations

import importlib

from trainer_plugin.stages.base import Stage, StageContext

STAGE_MODULES = {
    "sft": "trainer_plugin.stages.sft",
    "pt": "trainer_plugin.stages.pt",
    "dpo": "trainer_plugin.stages.dpo",
    "orpo": "trainer_plugin.stages.orpo",
    "simpo": "trainer_plugin.stages.simpo",
    "kto": "trainer_plugin.stages.kto",
    "rm": "trainer_plugin.stages.rm",
}


def get_stage(name: str) -> Stage:
    """The stage called ``name`` (a key of :data:`STAGE_MODULES`)."""
    return importlib.import_module(STAGE_MODULES[name]).STAGE


__all__ = ["STAGE_MODULES", "Stage", "StageContext", "get_stage"]
