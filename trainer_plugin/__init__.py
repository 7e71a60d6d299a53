"""fmtkit's training stack: ``fmtkit train`` and ``fmtkit export`` on TRL.

Installed with ``pip install 'fmtkit[train]'``; the commands register through
the ``fmtkit.commands`` entry point group. Layout:

- :mod:`.config`: the LLaMA-Factory-style YAML config as a typed dataclass
- :mod:`.gate`: validation of the datasets for the stage, before any model loads
- :mod:`.data`: samples -> TRL rows (pure functions)
- :mod:`.stages`: one module per stage (sft, pt, dpo, orpo, simpo, kto, rm) over a shared core
- :mod:`.run`: one run start to finish; :mod:`.progress`: live lines and the summary
- :mod:`.export`: LoRA merge

Importing this package imports nothing heavy; torch, transformers and TRL load
when a run starts.
"""
