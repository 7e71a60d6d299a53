"""The ``fmtkit`` command line: a thin shell over the library.

Commands are imported only when run, so ``fmtkit --help`` stays fast and never
imports torch, transformers or datasets. Each command lives in its own module
under :mod:`fmtkit.commands`; the training stack adds ``train`` and ``export``
through the ``fmtkit.commands`` entry point group (see ``trainer_plugin``).
"""

from __future__ import annotations

import functools
import importlib
import sys
from importlib.metadata import entry_points

import click

from fmtkit import __version__
from fmtkit.errors import EXIT_USAGE, FmtkitError

# name -> (module:attribute, one-line help). One line per command.
BUILTIN_COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("fmtkit.commands.validate:validate", "Check a dataset folder or data file for problems."),
    "config": ("fmtkit.commands.validate:config", "Show the settings validate would use, and where each came from."),
    "rules": ("fmtkit.commands.rules:rules", "List every rule with its code and severity."),
    "explain": ("fmtkit.commands.rules:explain", "Show the documentation of one rule."),
    "convert": ("fmtkit.commands.convert:convert", "Convert a dataset to another form, reporting any loss."),
    "stats": ("fmtkit.commands.stats:stats", "Counts, lengths and duplicates of a dataset."),
    "render": ("fmtkit.commands.render:render", "Show a sample as the model sees it, with trained tokens highlighted."),
    "download": ("fmtkit.commands.download:download", "Download a model from a hub or mirror (resumable)."),
    "chat": ("fmtkit.commands.chat:chat", "Chat with a model (or a trained adapter) in the terminal."),
    "infer": ("fmtkit.commands.infer:infer", "Generate answers for the prompts of a dataset."),
}
PLUGIN_GROUP = "fmtkit.commands"
TRAIN_STACK = {"torch", "transformers", "trl", "peft", "datasets", "accelerate", "tokenizers", "safetensors"}
PLUGIN_HELP = {"train": "Fine-tune a model with TRL on validated data.", "export": "Merge a LoRA adapter into its base model."}
TRAIN_HINT = (
    "the training stack is not installed. Install it with:\n"
    "  pip install torch==2.13.0 && pip install 'fmtkit[train]'"
)


@functools.cache
def _command_targets() -> dict[str, str]:
    """Command name -> "module:attribute": the built-in commands, then plugins' entry points."""
    targets = {name: t for name, (t, _) in BUILTIN_COMMANDS.items()}
    for ep in entry_points(group=PLUGIN_GROUP):
        targets.setdefault(ep.name, ep.value)
    return targets


def _load(target: str) -> click.Command:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


class LazyGroup(click.Group):
    """A click group that imports a command's module only when that command runs."""

    def _targets(self) -> dict[str, str]:
        return _command_targets()

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self._targets()) | set(PLUGIN_HELP))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = self._targets().get(name)
        if target is None:
            return _missing_plugin(name) if name in PLUGIN_HELP else None
        try:
            return _load(target)
        except ModuleNotFoundError as exc:
            if name in PLUGIN_HELP or (exc.name or "").split(".")[0] in TRAIN_STACK:
                return _missing_plugin(name)
            raise

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help text without importing any command module.
        helps = {name: h for name, (_, h) in BUILTIN_COMMANDS.items()} | PLUGIN_HELP
        rows = [(name, helps.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _missing_plugin(name: str) -> click.Command:
    @click.command(name, help=PLUGIN_HELP.get(name), context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def missing(args: tuple[str, ...]) -> None:
        raise FmtkitError(f"fmtkit {name}: {TRAIN_HINT}", exit_code=EXIT_USAGE)

    return missing


# Set for every command but `download` (unless already set): models and tokenizers come from local folders or the hub cache.
OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
NETWORK_COMMANDS = {"download"}
OFFLINE_SET_HERE: set[str] = set()  # the ones fmtkit set (not the user): `--remote` may lift them


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fmtkit")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """fmtkit: check, convert and train on LLM fine-tuning datasets.

    \b
    Exit codes: 0 success (validate: no finding at or above --fail-on), 1 findings or a failed run,
    2 usage error or unreadable input.
    Only `fmtkit download` uses the network; to let other commands fetch
    from the hub, set HF_HUB_OFFLINE=0.
    """
    if ctx.invoked_subcommand not in NETWORK_COMMANDS:
        import os

        for name in OFFLINE_VARS:
            if name not in os.environ:
                os.environ[name] = "1"
                OFFLINE_SET_HERE.add(name)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the CLI and turns fmtkit errors into a message and exit code.

    SIGTERM ends a run as SIGINT does, leaving no temporary file behind (exit 143).
    """
    from fmtkit.writing import cleanup_on_sigterm

    try:
        with cleanup_on_sigterm():
            code = cli.main(args=argv, prog_name="fmtkit", standalone_mode=False)
        # without standalone mode click returns a command's ctx.exit(code) instead of exiting
        sys.exit(code if isinstance(code, int) else 0)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except FmtkitError as exc:
        from fmtkit.report.terminal import printable

        click.echo(f"error: {printable(str(exc))}", err=True)
        sys.exit(exc.exit_code)
    except ModuleNotFoundError as exc:
        # a command reached the training stack on a light install: say how to get it, no traceback
        if (exc.name or "").split(".")[0] not in TRAIN_STACK:
            raise
        click.echo(f"error: this command needs {exc.name}, but {TRAIN_HINT}", err=True)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
