"""FMT6xx: multimodal records: media lists, placeholders and media files.

Each ``<image>`` / ``<video>`` / ``<audio>`` placeholder, counted over all the
text of a record, needs exactly one entry in the matching media list, in order.
Relative paths resolve against the dataset folder (LLaMA-Factory's
``media_dir`` default), not the data file's folder.
"""

from __future__ import annotations

import functools
import os

from fmtkit.rules import ERROR, WARNING, rule
from fmtkit.rules.view import EntryView
from fmtkit.sample import PLACEHOLDERS

_KINDS = tuple(PLACEHOLDERS.items())


def _texts(rec: dict, view: EntryView):
    e = view.entry
    if e.is_conversation:
        msgs = rec.get(e.messages) if e.messages else None
        if type(msgs) is list:
            for m in msgs:
                if type(m) is dict:
                    c = m.get(e.content_tag)
                    if type(c) is str:
                        yield c
        for side in (e.chosen, e.rejected):
            v = rec.get(side) if side else None
            if type(v) is dict and type(v.get(e.content_tag)) is str:
                yield v[e.content_tag]
    else:
        for key in ("prompt", "query", "response", "chosen", "rejected"):
            col = getattr(e, key)
            if col is not None and type(rec.get(col)) is str:
                yield rec[col]
        h = rec.get(e.history) if e.history else None
        if type(h) is list:
            for pair in h:
                if type(pair) is list:
                    yield from (x for x in pair if type(x) is str)


def _media_list(rec: dict, view: EntryView, kind: str):
    col = getattr(view.entry, kind)
    if col is None:
        return None
    v = rec.get(col)
    if v is None:
        return []
    return [v] if type(v) is str else v


@rule("FMT601", "media-not-list", WARNING, 'write the media column as a list: ["a.png"]', scope="record")
def media_not_list(rec: dict, view: EntryView):
    """A media column (images, videos, audios) holds a bare string instead of a list.

    Some loaders count the string's characters as media; write a list.

    Passes::

        # entry: {"columns": {"prompt": "instruction", "query": "input", "response": "output", "images": "images"}}
        # demo.jsonl
        {"instruction": "<image>What is this?", "input": "", "output": "A cat.", "images": ["cat.png"]}
        # cat.png
        PNG

    Fails::

        # entry: {"columns": {"prompt": "instruction", "query": "input", "response": "output", "images": "images"}}
        # demo.jsonl
        {"instruction": "<image>What is this?", "input": "", "output": "A cat.", "images": "cat.png"}
        # cat.png
        PNG
    """
    out = None
    for kind in PLACEHOLDERS:
        col = getattr(view.entry, kind)
        if col is not None and type(rec.get(col)) is str:
            out = (out or []) + [f"{col!r} is a string, not a list"]
    return out


def _maps_media(view: EntryView) -> bool:
    return any(getattr(view.entry, kind) for kind in PLACEHOLDERS)


def _counts_placeholders(view: EntryView) -> bool:
    """Stage pt neither loads media nor counts placeholders (FMT906 says so)."""
    return _maps_media(view) and view.stage != "pt"


@rule("FMT602", "placeholder-count", ERROR, "make the number of <image>/<video>/<audio> tags equal the number of media", applies=_counts_placeholders)
def placeholder_count(rec: dict, view: EntryView):
    """The number of placeholders differs from the number of media files.

    Counted over all messages (or instruction, input, output and history) of
    the record, on an entry that maps a media column. LLaMA-Factory's
    multimodal plugins stop training on a mismatch. A kind of media the entry
    does not map counts as zero media. (On an entry without media columns,
    placeholders are plain text: FMT605.)

    Passes::

        # entry: {"columns": {"prompt": "instruction", "query": "input", "response": "output", "images": "images"}}
        # demo.jsonl
        {"instruction": "<image><image>Compare them.", "input": "", "output": "Same cat.", "images": ["a.png", "b.png"]}
        # a.png
        PNG
        # b.png
        PNG

    Fails::

        # entry: {"columns": {"prompt": "instruction", "query": "input", "response": "output", "images": "images"}}
        # demo.jsonl
        {"instruction": "<image>Compare them.", "input": "", "output": "Same cat.", "images": ["a.png", "b.png"]}
        # a.png
        PNG
        # b.png
        PNG
    """
    texts = None
    out = None
    for kind, tag in _KINDS:
        media = _media_list(rec, view, kind)
        if media is None and texts is not None and not any(tag in t for t in texts):
            continue
        if texts is None:
            texts = list(_texts(rec, view))
        n_tags = sum(t.count(tag) for t in texts)
        n_media = len(media) if type(media) is list else 0
        if n_tags != n_media and (media is not None or n_tags):
            col = getattr(view.entry, kind)
            where = f"{col!r} lists {n_media}" if col else f"the entry maps no {kind} column"
            out = (out or []) + [f"{n_tags} {tag} placeholder(s) but {where}"]
    return out


@rule("FMT605", "placeholder-as-text", WARNING, "write the tag some other way (e.g. `< image >`), or map a media column if the record has media", applies=lambda v: not _maps_media(v))
def placeholder_as_text(rec: dict, view: EntryView):
    """A text-only entry's record contains ``<image>``, ``<video>`` or ``<audio>``.

    LLaMA-Factory counts placeholders only in its multimodal plugins: a text
    model's template trains the tag as plain text, but the same entry used with
    a vision or audio template (qwen2_vl, llava, ...) stops with "The number of
    images does not match the number of <image> tokens". Fine for a text model
    if the tag is meant literally (e.g. text about HTML).

    Passes::

        # demo.jsonl
        {"instruction": "What does the img tag do in HTML?", "input": "", "output": "It embeds an image."}

    Fails::

        # demo.jsonl
        {"instruction": "What does <image> mean here?", "input": "", "output": "Nothing."}
    """
    out = None
    for text in _texts(rec, view):
        if "<" in text:
            for tag in PLACEHOLDERS.values():
                if tag in text:
                    out = out or []
                    if not any(tag in m for m in out):
                        out.append(f"{tag} appears in the text, but the entry maps no media column: a vision or audio template would stop on it")
    return out


def _paths(rec: dict, view: EntryView):
    for kind in PLACEHOLDERS:
        media = _media_list(rec, view, kind)
        if type(media) is list:  # other types are the schema's to report (FMT300)
            for p in media:
                if type(p) is str:
                    yield p


def _is_url(p: str) -> bool:
    return "://" in p[:12] or p.startswith("data:")


def is_web_media(p: str) -> bool:
    """Whether a media string is an http(s) URL or a data: URI, which LLaMA-Factory's image reader cannot open.

    >>> is_web_media("https://example.com/a.png"), is_web_media("data:image/png;base64,AA=="), is_web_media("a.png")
    (True, True, False)
    """
    return p[:8].lower().startswith(("http://", "https://")) or p[:5].lower() == "data:"


@rule("FMT603", "media-missing", ERROR, "add the file, or fix the path (relative to the dataset folder)", applies=lambda v: any(getattr(v.entry, k) for k in PLACEHOLDERS))
def media_missing(rec: dict, view: EntryView):
    """A media file does not exist.

    Relative paths resolve against the dataset folder (``media_dir``), not the
    data file's folder. LLaMA-Factory only warns, then fails at training time.

    Passes::

        # entry: {"columns": {"prompt": "instruction", "query": "input", "response": "output", "images": "images"}}
        # demo.jsonl
        {"instruction": "<image>What is this?", "input": "", "output": "A cat.", "images": ["cat.png"]}
        # cat.png
        PNG

    Fails::

        # entry: {"columns": {"prompt": "instruction", "query": "input", "response": "output", "images": "images"}}
        # demo.jsonl
        {"instruction": "<image>What is this?", "input": "", "output": "A cat.", "images": ["dog.png"]}
    """
    out = None
    cache = view.media_exists
    for p in _paths(rec, view):
        if _is_url(p):
            continue
        ok = cache.get(p)
        if ok is None:
            ok = cache[p] = os.path.isfile(os.path.join(view.root, p))
        if not ok:
            out = (out or []) + [f"media file {p!r} not found under the dataset folder"]
    return out


@rule("FMT604", "media-outside", WARNING, "keep media inside the dataset folder and use relative paths", applies=lambda v: any(getattr(v.entry, k) for k in PLACEHOLDERS))
def media_outside(rec: dict, view: EntryView):
    """A media path is absolute or escapes the dataset folder (``../``).

    Such datasets break when moved or shared.

    Passes::

        # entry: {"columns": {"prompt": "instruction", "query": "input", "response": "output", "images": "images"}}
        # demo.jsonl
        {"instruction": "<image>What is this?", "input": "", "output": "A cat.", "images": ["cat.png"]}
        # cat.png
        PNG

    Fails::

        # entry: {"columns": {"prompt": "instruction", "query": "input", "response": "output", "images": "images"}}
        # demo.jsonl
        {"instruction": "<image>What is this?", "input": "", "output": "A cat.", "images": ["../cat.png"]}
    """
    out = None
    for p in _paths(rec, view):
        if _is_url(p):
            continue
        if os.path.isabs(p) or os.path.normpath(p).startswith(".."):
            out = (out or []) + [f"media path {p!r} points outside the dataset folder"]
    return out


def _maps_images(view: EntryView) -> bool:
    return bool(view.entry.images)


@rule("FMT607", "image-url", ERROR, "download the image into the dataset folder and write its relative path", applies=_maps_images)
def image_url(rec: dict, view: EntryView):
    """An image is an ``http(s)://`` URL or a ``data:`` URI: LLaMA-Factory cannot open it.

    LLaMA-Factory keeps a path it does not find under ``media_dir`` as
    written, and its image reader opens it as a local file
    (``Image.open(path)``), so training stops with "No such file or
    directory" at the first batch that holds it. (TRL's vision collator hands
    images to the model's processor, which downloads URLs: a TRL form may
    keep them.)

    Passes::

        # entry: {"formatting": "sharegpt", "columns": {"messages": "conversations", "images": "images"}}
        # demo.jsonl
        {"conversations": [{"from": "human", "value": "<image>What is this?"}, {"from": "gpt", "value": "A cat."}], "images": ["cat.png"]}
        # cat.png
        PNG

    Fails::

        # entry: {"formatting": "sharegpt", "columns": {"messages": "conversations", "images": "images"}}
        # demo.jsonl
        {"conversations": [{"from": "human", "value": "<image>What is this?"}, {"from": "gpt", "value": "A cat."}], "images": ["https://example.com/cat.png"]}
    """
    media = _media_list(rec, view, "images")
    if type(media) is not list:
        return None
    out = None
    for p in media:
        if type(p) is str and is_web_media(p):
            shown = p if len(p) <= 60 else p[:57] + "..."
            out = (out or []) + [f"image {shown!r} is a {'data: URI' if p.startswith('data:') else 'URL'}: LLaMA-Factory opens images as local files"]
    return out


@rule("FMT606", "media-reads-outside", ERROR, "copy the file into the dataset folder and refer to it by a relative path", applies=lambda v: any(getattr(v.entry, k) for k in PLACEHOLDERS))
def media_reads_outside(rec: dict, view: EntryView):
    """A media path reads a file outside the dataset folder: a ``file://`` URL, or a symbolic link that leads out.

    LLaMA-Factory's video and audio readers open ``file://`` URLs from
    anywhere on disk, and a link such as ``media/cat.png -> /etc/passwd``
    looks like a file of the dataset. A dataset from someone else could make
    training read (and put into a model) any file of the machine.

    Passes::

        # entry: {"columns": {"prompt": "instruction", "query": "input", "response": "output", "videos": "videos"}}
        # demo.jsonl
        {"instruction": "<video>What happens?", "input": "", "output": "A cat jumps.", "videos": ["cat.mp4"]}
        # cat.mp4
        MP4

    Fails::

        # entry: {"columns": {"prompt": "instruction", "query": "input", "response": "output", "videos": "videos"}}
        # demo.jsonl
        {"instruction": "<video>What happens?", "input": "", "output": "A cat jumps.", "videos": ["file:///home/me/cat.mp4"]}
    """
    out = None
    for p in _paths(rec, view):
        if p[:7].lower() == "file://":
            out = (out or []) + [f"media {p!r} is a file:// URL: it reads a file from anywhere on the machine"]
        elif not _is_url(p) and not os.path.isabs(p):
            target = _link_outside(view.root, p)
            if target is not None:
                out = (out or []) + [f"media path {p!r} is a symbolic link to {target}, outside the dataset folder"]
    return out


@functools.lru_cache(maxsize=1 << 16)
def _link_outside(root: str, path: str) -> str | None:
    """Where ``root/path`` really is, when a symbolic link on the way leads out of ``root``; else None."""
    full = os.path.join(root, path)
    try:
        real = os.path.realpath(full)
    except ValueError:  # a NUL byte: no such file can exist (FMT603 says it is missing)
        return None
    if real == os.path.abspath(full):  # no link on the way
        return None
    base = os.path.realpath(root)
    return None if real == base or real.startswith(base.rstrip(os.sep) + os.sep) else real
