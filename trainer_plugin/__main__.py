"""``python -m trainer_plugin train CONFIG.yaml``: the same commands without the ``fmtkit`` script.

Meant for launchers that take a module, e.g.
``accelerate launch --config_file zero3.yaml -m trainer_plugin train cfg.yaml``.
"""

from fmtkit.cli import main

if __name__ == "__main__":
    main()
