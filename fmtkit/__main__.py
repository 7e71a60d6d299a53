"""``python -m fmtkit`` (and ``accelerate launch -m fmtkit train cfg.yaml``) run the CLI."""

from fmtkit.cli import main

main()
