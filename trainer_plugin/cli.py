"""``fmtkit train`` and ``fmtkit export``: thin click shells over :mod:`trainer_plugin.run` and :mod:`.export`.

Registered through the ``fmtkit.commands`` entry point group; this module
imports nothing heavy, so ``fmtkit train --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command("train", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("config_file", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--dry-run", is_flag=True, help="Check the config and the data, then stop before loading the model.")
def train(config_file: Path, overrides: tuple[str, ...], dry_run: bool) -> None:
    """Fine-tune a model with TRL on validated data.

    CONFIG_FILE is a LLaMA-Factory style YAML file (model_name_or_path, stage,
    finetuning_type, dataset, template, output_dir, ...); KEY=VALUE pairs
    override its keys. The datasets are validated for the stage first; errors
    stop the run (exit code 1) before any model loads. Every key is described
    in docs/training.md.

    \b
    Examples:
      fmtkit train qwen3_lora_sft.yaml
      fmtkit train qwen3_lora_sft.yaml max_steps=20 output_dir=out/try
      accelerate launch -m fmtkit train qwen3_lora_sft.yaml
    """
    from trainer_plugin.config import load_config, read_yaml
    from trainer_plugin.run import train as run_train

    config, notes = load_config(read_yaml(config_file), overrides)
    run_train(config, notes, dry_run=dry_run)


@click.command("export", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--adapter",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of a trained LoRA adapter.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the merged model.",
)
@click.option("--base", default=None, help="Base model (default: base_model_name_or_path of adapter_config.json).")
@click.option(
    "--dtype",
    type=click.Choice(["auto", "float32", "bfloat16", "float16"]),
    default="auto",
    show_default=True,
    help="Weights' dtype while merging and in the saved model.",
)
def export(adapter: Path, output: Path, base: str | None, dtype: str) -> None:
    """Merge a LoRA adapter into its base model and save model + tokenizer."""
    from trainer_plugin.export import export_adapter

    export_adapter(adapter, output, base=base, dtype=dtype, echo=click.echo)
