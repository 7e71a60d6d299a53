"""FMT9xx: fitness for a training stage (``fmtkit validate --stage pt|sft|rm|dpo|kto|ppo``).

What LLaMA-Factory's stage would reject, said before training starts.
"""

from __future__ import annotations

from collections.abc import Iterator

from fmtkit.dataset_info import DatasetEntry
from fmtkit.rules import ERROR, WARNING, rule
from fmtkit.rules.view import EntryView

STAGES = ("pt", "sft", "rm", "dpo", "kto", "ppo")


@rule("FMT901", "stage-ranking", ERROR, "use ranking: true entries for rm/dpo and ranking: false for the other stages", scope="stage")
def stage_ranking(entry: DatasetEntry, stage: str) -> Iterator[str]:
    """The entry's `ranking` does not fit the stage.

    rm and dpo (and ORPO / SimPO, which are dpo with another loss) need
    preference pairs; pt, sft, kto and ppo refuse them ("The dataset is not
    applicable in the current training stage").

    Passes::

        # stage: sft
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}

    Fails::

        # stage: dpo
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}
    """
    wants = stage in ("rm", "dpo")
    if bool(entry.ranking is True) != wants:
        have = "preference pairs (ranking: true)" if entry.ranking is True else "no preference pairs"
        yield f"stage {stage} needs {'preference pairs' if wants else 'data without ranking'}, but the entry has {have}"


@rule("FMT902", "stage-kto-labels", ERROR, "map a boolean kto_tag column in the entry's `columns`", scope="stage")
def stage_kto(entry: DatasetEntry, stage: str) -> Iterator[str]:
    """Stage kto needs a `kto_tag` column (boolean labels); without one every row is dropped.

    Passes::

        # stage: kto
        # entry: {"columns": {"prompt": "instruction", "query": "input", "response": "output", "kto_tag": "label"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello", "label": true}
        {"instruction": "Hi", "input": "", "output": "Go away", "label": false}

    Fails::

        # stage: kto
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}
    """
    if stage == "kto" and entry.kto_tag is None:
        yield "stage kto needs a kto_tag column; this entry maps none"


@rule("FMT903", "stage-pt-form", WARNING, "use an alpaca entry with columns {\"prompt\": \"text\"} (or a .txt file) for pt", scope="stage")
def stage_pt(entry: DatasetEntry, stage: str) -> Iterator[str]:
    """Stage pt reads only the first message (or instruction) of each record.

    Conversations and instruction pairs lose everything but their first turn.

    Passes::

        # stage: pt
        # entry: {"columns": {"prompt": "text"}}
        # demo.jsonl
        {"text": "A long document."}

    Fails::

        # stage: pt
        # entry: {"formatting": "sharegpt"}
        # demo.jsonl
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}
    """
    if stage == "pt" and not entry.is_pretrain:
        yield "stage pt keeps only the first message / instruction of each record"


@rule("FMT906", "stage-pt-media", WARNING, "train the media under stage sft, or drop the media columns from the entry", scope="stage")
def stage_pt_media(entry: DatasetEntry, stage: str) -> Iterator[str]:
    """Stage pt never reads the entry's media columns: it trains on the text alone.

    LLaMA-Factory's pretraining processor takes the text of each record and
    nothing else, so images, videos and audios are neither loaded nor matched
    with their placeholders (which stay in the text as written; FMT602 does not
    count them under stage pt).

    Passes::

        # stage: pt
        # entry: {"columns": {"prompt": "text"}}
        # demo.jsonl
        {"text": "A long document."}

    Fails::

        # stage: pt
        # entry: {"columns": {"prompt": "text", "images": "images"}}
        # demo.jsonl
        {"text": "<image>A photo of a cat.", "images": ["cat.png"]}
    """
    if stage == "pt":
        media = [k for k in ("images", "videos", "audios") if getattr(entry, k) is not None]
        if media:
            yield f"stage pt ignores the entry's {', '.join(media)}: only the text is trained"


@rule("FMT905", "stage-no-response-column", ERROR, "map the answer column (response) in `columns`", scope="stage")
def stage_no_response_column(entry: DatasetEntry, stage: str) -> Iterator[str]:
    """Under stage sft (or kto) an Alpaca entry maps no response column, so no record has an answer.

    Passes::

        # stage: sft
        # entry: {"columns": {"prompt": "instruction", "query": "input", "response": "output"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}

    Fails::

        # stage: sft
        # entry: {"columns": {"prompt": "instruction", "query": "input"}}
        # demo.jsonl
        {"instruction": "Hi", "input": ""}
    """
    if stage in ("sft", "kto") and entry.formatting == "alpaca" and entry.ranking is not True and entry.response is None:
        yield f"stage {stage} needs answers, but the entry maps no response column"


def _needs_answer(view: EntryView) -> bool:
    e = view.entry
    return view.stage in ("sft", "kto") and e.formatting == "alpaca" and e.ranking is not True and e.response is not None


@rule("FMT904", "stage-no-answer", ERROR, "give every record an answer (the entry's response column)", applies=_needs_answer)
def stage_no_answer(rec: dict, view: EntryView):
    """Under stage sft (or kto) an Alpaca record has no answer, so LLaMA-Factory drops it.

    Passes::

        # stage: sft
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}

    Fails::

        # stage: sft
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}
        {"instruction": "Hi", "input": "there"}
    """
    col = view.entry.response
    if type(rec.get(col)) is not str:
        return f"no {col!r} (answer) in this record"
    return None
