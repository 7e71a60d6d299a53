"""``fmtkit download``: the command line over :func:`fmtkit.models.download.download_model`."""

from __future__ import annotations

import click

from fmtkit.models.download import SOURCES, Download, download_model, human_size


@click.command("download")
@click.argument("repo_id")
@click.option("--local-dir", type=click.Path(file_okay=False), help="Put the files in this folder (else in the hub cache).")
@click.option("--endpoint", metavar="URL", help="Hub or mirror to use (default: HF_ENDPOINT, else https://huggingface.co).")
@click.option("--cache-dir", type=click.Path(file_okay=False),
              help="Hub cache folder (default: HF_HUB_CACHE, else HF_HOME/hub).")  # fmt: skip
@click.option("--revision", metavar="REV", help="Branch, tag or commit (default: the main branch).")
@click.option("--include", multiple=True, metavar="GLOB", help="Download only files matching GLOB (repeatable).")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip files matching GLOB (repeatable).")
@click.option("--source", type=click.Choice(SOURCES), default="huggingface", show_default=True,
              help="Where to download from; modelscope needs `pip install modelscope`.")  # fmt: skip
@click.option("--no-token", is_flag=True, help="Send no access token (for a third-party mirror).")
@click.option("--no-progress", is_flag=True, help="Do not show progress bars.")
def download(
    repo_id: str,
    local_dir: str | None,
    endpoint: str | None,
    cache_dir: str | None,
    revision: str | None,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    source: str,
    no_token: bool,
    no_progress: bool,
) -> None:
    """Download the model REPO_ID (owner/name) from a hub or mirror.

    Interrupted files are resumed, and running the same command again skips
    the files already complete. Prints the folder of the files on stdout.

    \b
    Examples:
      fmtkit download Qwen/Qwen3-0.6B --local-dir models/Qwen3-0.6B
      HF_ENDPOINT=https://hf-mirror.com fmtkit download Qwen/Qwen3-0.6B
      fmtkit download Qwen/Qwen3-0.6B --include '*.json' --include '*.safetensors'
    """

    def announce(d: Download) -> None:
        click.echo(f"endpoint: {d.endpoint.url} (from {d.endpoint.origin})", err=True)
        if d.cache is not None and d.source == "huggingface":
            click.echo(f"cache:    {d.cache.path} (from {d.cache.origin})", err=True)
        click.echo(f"folder:   {d.folder}", err=True)
        if d.files:
            size = f", {human_size(d.total_bytes)}" if d.total_bytes is not None else ""
            todo = f", {human_size(d.missing_bytes)} to fetch" if d.missing_bytes is not None else ""
            rev = f" at {d.commit[:12]}" if d.commit else ""
            click.echo(f"files:    {len(d.files)}{size}{todo} ({d.repo_id}{rev})", err=True)

    result = download_model(
        repo_id,
        local_dir=local_dir,
        cache_dir=cache_dir,
        endpoint=endpoint,
        revision=revision,
        include=include,
        exclude=exclude,
        source=source,
        token=False if no_token else None,
        progress=not no_progress,
        on_start=announce,
    )
    click.echo(f"downloaded {result.repo_id} to {result.folder}", err=True)
    click.echo(str(result.folder))
