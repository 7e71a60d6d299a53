"""The JSON Schemas in ``schemas/``: well-formed, self-consistent, and exactly as strict as the tools.

Every schema is checked with both validators fmtkit uses (``jsonschema`` and
``jsonschema_rs``), resolving cross-file ``$ref`` offline through a registry
built from the files themselves: nothing is fetched from ``fmtkit.dev``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from fmtkit.forms import BARE_ENTRIES
from fmtkit.dataset_info import (
    COLUMN_DEFAULTS,
    ENTRY_KEYS,
    FORMATTINGS,
    LEGACY_KEYS,
    SOURCE_KEYS,
    TAG_DEFAULTS,
)

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"
ID_BASE = "https://fmtkit.dev/schemas/"
DRAFT = "https://json-schema.org/draft/2020-12/schema"

EXPECTED_FILES = {
    "dataset_info.schema.json",
    "alpaca-sft.schema.json",
    "alpaca-pretrain.schema.json",
    "alpaca-preference.schema.json",
    "alpaca-kto.schema.json",
    "sharegpt-sft.schema.json",
    "sharegpt-preference.schema.json",
    "sharegpt-kto.schema.json",
    "openai-messages.schema.json",
    "multimodal.schema.json",
    "trl-language-modeling.schema.json",
    "trl-prompt-only.schema.json",
    "trl-prompt-completion.schema.json",
    "trl-preference.schema.json",
    "trl-unpaired-preference.schema.json",
    "vendor-preference.schema.json",
}
TRL_FILES = sorted(n for n in EXPECTED_FILES if n.startswith("trl-"))
OPEN_RECORD_FILES = sorted(
    n for n in EXPECTED_FILES if n.split("-")[0] in ("alpaca", "sharegpt", "openai", "vendor", "multimodal")
)
# Record forms that carry LLaMA-Factory's media columns (pretraining text has none).
MEDIA_FORMS = sorted(
    n for n in EXPECTED_FILES if n.split("-")[0] in ("alpaca", "sharegpt") and n != "alpaca-pretrain.schema.json"
)


def _load() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(SCHEMA_DIR.glob("*.schema.json"))}


SCHEMAS = _load()
PY_REGISTRY: Registry = Registry().with_resources(
    (s["$id"], Resource.from_contents(s, default_specification=DRAFT202012)) for s in SCHEMAS.values()
)
RS_REGISTRY = jsonschema_rs.Registry([(s["$id"], s) for s in SCHEMAS.values()])


def py_validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(SCHEMAS[name], registry=PY_REGISTRY)


def rs_validator(name: str) -> jsonschema_rs.Validator:
    return jsonschema_rs.validator_for(SCHEMAS[name], registry=RS_REGISTRY, offline=True)


PY = {name: py_validator(name) for name in SCHEMAS}
RS = {name: rs_validator(name) for name in SCHEMAS}


def verdicts(name: str, instance: Any) -> tuple[bool, bool]:
    """(jsonschema says valid, jsonschema_rs says valid)."""
    return PY[name].is_valid(instance), RS[name].is_valid(instance)


def walk(node: Any, path: str = "#") -> Iterator[tuple[str, Any]]:
    """Every (JSON pointer, subschema-or-value) below ``node``."""
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            if k not in ("examples", "enum", "const", "default"):
                yield from walk(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, f"{path}/{i}")


# --------------------------------------------------------------------------- files and metadata


def test_the_expected_files_and_nothing_else() -> None:
    assert set(SCHEMAS) == EXPECTED_FILES


@pytest.mark.parametrize("name", sorted(EXPECTED_FILES))
def test_metaschema(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMAS[name])
    assert jsonschema_rs.meta.is_valid(SCHEMAS[name])


@pytest.mark.parametrize("name", sorted(EXPECTED_FILES))
def test_header(name: str) -> None:
    schema = SCHEMAS[name]
    assert schema["$schema"] == DRAFT
    assert schema["$id"] == ID_BASE + name
    assert schema["title"].strip() and schema["description"].strip()
    assert isinstance(schema["examples"], list) and len(schema["examples"]) >= 2


@pytest.mark.parametrize("name", sorted(EXPECTED_FILES))
def test_every_property_is_described(name: str) -> None:
    missing = [
        f"{path}/properties/{key}"
        for path, node in walk(SCHEMAS[name])
        if isinstance(node, dict) and isinstance(node.get("properties"), dict) and not path.endswith("/properties")
        for key, sub in node["properties"].items()
        if "description" not in sub and not _is_narrowing(path)
    ]
    assert not missing, missing


def _is_narrowing(path: str) -> bool:
    """``if``/``anyOf`` branches restate properties only to constrain them; they need no description."""
    return bool({"if", "then", "anyOf"} & set(path.split("/")))


@pytest.mark.parametrize("name", sorted(EXPECTED_FILES))
def test_every_ref_resolves_offline(name: str) -> None:
    resolver = PY_REGISTRY.resolver(base_uri=SCHEMAS[name]["$id"])
    refs = [v for p, v in walk(SCHEMAS[name]) if p.endswith("/$ref")]
    for ref in refs:
        # Relative refs (resolved against `$id`) keep `check-jsonschema --base-uri file://.../schemas/` working offline.
        assert not ref.startswith(("http:", "https:", "file:")), ref
        assert resolver.lookup(ref).contents is not None, ref


def test_cross_file_refs_need_the_registry() -> None:
    """Without the sibling files a validator cannot resolve them: proves the registry is really used."""
    with pytest.raises((jsonschema_rs.ReferencingError, jsonschema_rs.ValidationError), match="not present in a registry"):
        jsonschema_rs.validator_for(SCHEMAS["alpaca-preference.schema.json"], offline=True)


# --------------------------------------------------------------------------- own examples


@pytest.mark.parametrize(
    ("name", "index"), [(n, i) for n in sorted(EXPECTED_FILES) for i in range(len(SCHEMAS[n]["examples"]))]
)
def test_own_examples_validate(name: str, index: int) -> None:
    example = SCHEMAS[name]["examples"][index]
    PY[name].validate(example)
    RS[name].validate(example)


TRL_KEYS = ("prompt", "chosen", "rejected", "completion", "messages", "label", "text")


@pytest.mark.parametrize("name", TRL_FILES)
def test_trl_schemas_refuse_only_their_own_keys_out_of_type(name: str) -> None:
    """TRL ignores columns it does not know (ids, scores); it refuses a set of its own keys that fits no type.

    Except `messages` beside an implicit pair: extracting the prompt keeps only prompt, chosen and rejected."""
    for example in SCHEMAS[name]["examples"]:
        assert verdicts(name, {**example, "id": 7, "prompt_id": "a1", "score_chosen": 8.0}) == (True, True), example
        assert verdicts(name, {**example, "tools": []}) == (True, True), example
        implicit = "chosen" in example and "prompt" not in example
        for key in TRL_KEYS:
            if implicit and key == "messages":
                assert verdicts(name, {**example, key: "x"}) == (True, True), example
            elif key not in example:
                assert verdicts(name, {**example, key: example.get("text", "x")}) == (False, False), (key, example)


@pytest.mark.parametrize("name", OPEN_RECORD_FILES)
def test_record_schemas_allow_extra_columns(name: str) -> None:
    for example in SCHEMAS[name]["examples"]:
        assert verdicts(name, {**example, "id": 7, "source": "web"}) == (True, True), example


# --------------------------------------------------------------------------- agreement with the entry model


def test_dataset_info_keys_match_the_entry_model() -> None:
    entry = SCHEMAS["dataset_info.schema.json"]["$defs"]["entry"]
    props = entry["properties"]
    assert set(props) == set(ENTRY_KEYS) | set(LEGACY_KEYS)
    assert tuple(props["formatting"]["enum"]) == FORMATTINGS
    assert set(props["columns"]["properties"]) == set(COLUMN_DEFAULTS)
    assert set(props["tags"]["properties"]) == set(TAG_DEFAULTS)
    assert props["columns"]["additionalProperties"] is False and props["tags"]["additionalProperties"] is False
    assert {k for branch in entry["oneOf"] for k in _required_keys(branch)} == set(SOURCE_KEYS)


def _required_keys(branch: dict[str, Any]) -> set[str]:
    keys = set(branch.get("required", []))
    for sub in branch.get("anyOf", []):
        keys |= set(sub.get("required", []))
    return keys


def test_dataset_info_descriptions_state_the_model_defaults() -> None:
    props = SCHEMAS["dataset_info.schema.json"]["$defs"]["entry"]["properties"]
    for key, default in COLUMN_DEFAULTS.items():
        text = props["columns"]["properties"][key]["description"]
        assert (f"`{default}`" in text) if default else ("No default" in text), key
    for key, default in TAG_DEFAULTS.items():
        assert f"`{default}`" in props["tags"]["properties"][key]["description"], key


@pytest.mark.parametrize("form", sorted(BARE_ENTRIES))
def test_every_form_entry_is_a_valid_dataset_info_entry(form: str) -> None:
    info = {f"demo_{form}": {**BARE_ENTRIES[form], "file_name": "data.json"}}
    assert verdicts("dataset_info.schema.json", info) == (True, True)


# --------------------------------------------------------------------------- valid / invalid tables

OK_SG = [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]
Q = [{"role": "user", "content": "Hi"}]
A = [{"role": "assistant", "content": "Hello"}]
TAGS_OPENAI = BARE_ENTRIES["openai"]["tags"]

# (schema, case id, instance); one case per line, so the tables stay greppable.
# fmt: off
VALID: list[tuple[str, str, Any]] = [
    # dataset_info
    ("dataset_info.schema.json", "empty file", {}),
    ("dataset_info.schema.json", "editor $schema hint", {"$schema": "./schemas/dataset_info.schema.json", "d": {"file_name": "d.json"}}),
    ("dataset_info.schema.json", "hub mirrors together", {"d": {"hf_hub_url": "a/b", "ms_hub_url": "c/d", "om_hub_url": "e/f"}}),
    ("dataset_info.schema.json", "script with subset/folder", {"d": {"script_url": "my_script", "subset": "en", "folder": "x"}}),
    ("dataset_info.schema.json", "gs and gcs clouds", {"a": {"cloud_file_name": "gs://b/x.json"}, "b": {"cloud_file_name": "gcs://b/x.jsonl"}}),
    ("dataset_info.schema.json", "legacy file_sha1", {"d": {"file_name": "d.json", "file_sha1": "b52868dca53d"}}),
    ("dataset_info.schema.json", "openai formatting", {"d": {"file_name": "d.json", "formatting": "openai", "columns": {"messages": "messages"}, "tags": TAGS_OPENAI}}),
    ("dataset_info.schema.json", "sharegpt without columns", {"d": {"file_name": "d.json", "formatting": "sharegpt"}}),
    ("dataset_info.schema.json", "kto columns", {"d": {"file_name": "d.json", "columns": {"prompt": "instruction", "response": "output", "kto_tag": "kto_tag"}}}),
    ("dataset_info.schema.json", "every column and tag", {"d": {"file_name": "d.json", "formatting": "sharegpt", "columns": {k: k for k in COLUMN_DEFAULTS}, "tags": {k: k for k in TAG_DEFAULTS}}}),
    # alpaca
    ("alpaca-sft.schema.json", "minimal", {"instruction": "Hi", "output": "Hello"}),
    ("alpaca-sft.schema.json", "empty strings", {"instruction": "", "input": "", "output": ""}),
    ("alpaca-sft.schema.json", "history pairs", {"instruction": "a", "output": "b", "history": [["q1", "a1"], ["q2", "a2"]]}),
    ("alpaca-sft.schema.json", "images as list", {"instruction": "<image>?", "output": "cat", "images": ["a.png"]}),
    ("alpaca-sft.schema.json", "images as bare string (LLaMA-Factory wraps it)", {"instruction": "<image>?", "output": "cat", "images": "a.png"}),
    ("alpaca-sft.schema.json", "all media", {"instruction": "x", "output": "y", "images": [], "videos": ["v.mp4"], "audios": ["a.wav"]}),
    ("alpaca-pretrain.schema.json", "text", {"text": "Once upon a time"}),
    ("alpaca-preference.schema.json", "minimal", {"instruction": "q", "chosen": "good", "rejected": "bad"}),
    ("alpaca-kto.schema.json", "false label", {"instruction": "q", "output": "a", "kto_tag": False}),
    # sharegpt
    ("sharegpt-sft.schema.json", "system message first", {"conversations": [{"from": "system", "value": "Be nice."}, *OK_SG]}),
    ("sharegpt-sft.schema.json", "extra message keys", {"conversations": [{"from": "human", "value": "Hi", "weight": 1}, {"from": "gpt", "value": "Yo"}]}),
    ("sharegpt-sft.schema.json", "bare-string images", {"conversations": OK_SG, "images": "a.png"}),
    ("sharegpt-sft.schema.json", "odd count (parity is a rule, not the schema)", {"conversations": OK_SG[:1]}),
    ("sharegpt-preference.schema.json", "function_call reply", {"conversations": OK_SG[:1], "chosen": {"from": "function_call", "value": "{}"}, "rejected": {"from": "gpt", "value": "no"}}),
    ("sharegpt-kto.schema.json", "true label", {"conversations": OK_SG, "kto_tag": True}),
    # openai
    ("openai-messages.schema.json", "tool call without content key", {"messages": [*Q, {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{}"}}]}]}),
    ("openai-messages.schema.json", "tools as JSON string", {"messages": [*Q, *A], "tools": "[]"}),
    ("openai-messages.schema.json", "arguments as an object (LLaMA-Factory's and TRL's spelling)", {"messages": [*Q, {"role": "assistant", "content": None, "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"x": 1}}}]}]}),
    ("openai-messages.schema.json", "weight 0", {"messages": [*Q, {"role": "assistant", "content": "x", "weight": 0}]}),
    ("openai-messages.schema.json", "audio part", {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AAA=", "format": "wav"}}]}, *A]}),
    ("vendor-preference.schema.json", "with tools", {"input": {"messages": Q, "tools": [{"type": "function", "function": {"name": "f"}}]}, "preferred_output": A, "non_preferred_output": A}),
    # TRL
    ("trl-language-modeling.schema.json", "messages with tools", {"messages": [*Q, *A], "tools": [{"type": "function", "function": {"name": "f"}}]}),
    ("trl-language-modeling.schema.json", "vision parts", {"messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "?"}]}, *A]}),
    ("trl-prompt-only.schema.json", "tools as string", {"prompt": "Hi", "tools": "[]"}),
    ("trl-preference.schema.json", "implicit conversational", {"chosen": [*Q, *A], "rejected": [*Q, *A]}),
    ("trl-unpaired-preference.schema.json", "conversational", {"prompt": Q, "completion": A, "label": True}),
]

INVALID: list[tuple[str, str, Any]] = [
    # dataset_info: the traps of docs/llamafactory.md (dataset_info.json)
    ("dataset_info.schema.json", "`format` instead of `formatting`", {"d": {"file_name": "d.json", "format": "sharegpt"}}),
    ("dataset_info.schema.json", "misspelled key", {"d": {"file_name": "d.json", "colums": {"prompt": "q"}}}),
    ("dataset_info.schema.json", "no source key", {"d": {"formatting": "alpaca"}}),
    ("dataset_info.schema.json", "two local sources", {"d": {"file_name": "d.json", "script_url": "s"}}),
    ("dataset_info.schema.json", "file and cloud", {"d": {"file_name": "d.json", "cloud_file_name": "s3://b/d.json"}}),
    ("dataset_info.schema.json", "hub and file", {"d": {"hf_hub_url": "a/b", "file_name": "d.json"}}),
    ("dataset_info.schema.json", "bad formatting", {"d": {"file_name": "d.json", "formatting": "chatml"}}),
    ("dataset_info.schema.json", "formatting case", {"d": {"file_name": "d.json", "formatting": "ShareGPT"}}),
    ("dataset_info.schema.json", "unknown column key", {"d": {"file_name": "d.json", "columns": {"prompt": "q", "output": "a"}}}),
    ("dataset_info.schema.json", "unknown tag key", {"d": {"file_name": "d.json", "formatting": "sharegpt", "tags": {"role": "from"}}}),
    ("dataset_info.schema.json", "column value not a string", {"d": {"file_name": "d.json", "columns": {"images": ["images"]}}}),
    ("dataset_info.schema.json", "ranking as string", {"d": {"file_name": "d.json", "ranking": "true"}}),
    ("dataset_info.schema.json", "num_samples zero", {"d": {"file_name": "d.json", "num_samples": 0}}),
    ("dataset_info.schema.json", "num_samples not integer", {"d": {"file_name": "d.json", "num_samples": 1.5}}),
    ("dataset_info.schema.json", "cloud without scheme", {"d": {"cloud_file_name": "bucket/d.json"}}),
    ("dataset_info.schema.json", "cloud with http", {"d": {"cloud_file_name": "https://x/d.json"}}),
    ("dataset_info.schema.json", "empty file_name", {"d": {"file_name": ""}}),
    ("dataset_info.schema.json", "entry not an object", {"d": "d.json"}),
    ("dataset_info.schema.json", "top level is a list", [{"file_name": "d.json"}]),
    ("dataset_info.schema.json", "$schema not a string", {"$schema": {"file_name": "d.json"}}),
    ("dataset_info.schema.json", "sharegpt columns without messages", {"d": {"file_name": "d.json", "formatting": "sharegpt", "columns": {"system": "system"}}}),
    ("dataset_info.schema.json", "ranking without columns", {"d": {"file_name": "d.json", "ranking": True}}),
    ("dataset_info.schema.json", "ranking without rejected column", {"d": {"file_name": "d.json", "ranking": True, "columns": {"prompt": "instruction", "chosen": "chosen"}}}),
    ("dataset_info.schema.json", "file_sha1 not a string", {"d": {"file_name": "d.json", "file_sha1": 1}}),
    # alpaca
    ("alpaca-sft.schema.json", "missing output", {"instruction": "q"}),
    ("alpaca-sft.schema.json", "output not a string", {"instruction": "q", "output": ["a"]}),
    ("alpaca-sft.schema.json", "history triple", {"instruction": "q", "output": "a", "history": [["u", "a", "x"]]}),
    ("alpaca-sft.schema.json", "history single", {"instruction": "q", "output": "a", "history": [["u"]]}),
    ("alpaca-sft.schema.json", "history flat", {"instruction": "q", "output": "a", "history": ["u", "a"]}),
    ("alpaca-sft.schema.json", "history pair of numbers", {"instruction": "q", "output": "a", "history": [["u", 1]]}),
    ("alpaca-sft.schema.json", "images list of numbers", {"instruction": "q", "output": "a", "images": [1]}),
    ("alpaca-sft.schema.json", "images object", {"instruction": "q", "output": "a", "images": {"path": "a.png"}}),
    ("alpaca-sft.schema.json", "empty image path", {"instruction": "q", "output": "a", "images": [""]}),
    ("alpaca-sft.schema.json", "record is a list", [{"instruction": "q", "output": "a"}]),
    ("alpaca-pretrain.schema.json", "text not a string", {"text": ["x"]}),  # no text at all is the rules' (FMT301 in an entry, FMT306 alone)
    ("alpaca-pretrain.schema.json", "text not a string", {"text": ["x"]}),
    ("alpaca-preference.schema.json", "output instead of chosen/rejected", {"instruction": "q", "output": "a"}),
    ("alpaca-preference.schema.json", "chosen as a list", {"instruction": "q", "chosen": ["a"], "rejected": "b"}),
    ("alpaca-preference.schema.json", "missing rejected", {"instruction": "q", "chosen": "a"}),
    ("alpaca-kto.schema.json", 'kto_tag "true"', {"instruction": "q", "output": "a", "kto_tag": "true"}),
    ("alpaca-kto.schema.json", "kto_tag 1", {"instruction": "q", "output": "a", "kto_tag": 1}),
    ("alpaca-kto.schema.json", "missing kto_tag", {"instruction": "q", "output": "a"}),
    ("alpaca-kto.schema.json", "missing output", {"instruction": "q", "kto_tag": True}),
    # sharegpt
    ("sharegpt-sft.schema.json", "empty conversations", {"conversations": []}),
    ("sharegpt-sft.schema.json", "messages instead of conversations", {"messages": OK_SG}),
    ("sharegpt-sft.schema.json", 'role "bot"', {"conversations": [OK_SG[0], {"from": "bot", "value": "Hi"}]}),
    ("sharegpt-sft.schema.json", 'role "assistant" with default tags', {"conversations": [OK_SG[0], {"from": "assistant", "value": "Hi"}]}),
    ("sharegpt-sft.schema.json", "openai keys in sharegpt", {"conversations": [{"role": "user", "content": "Hi"}]}),
    ("sharegpt-sft.schema.json", "value not a string", {"conversations": [OK_SG[0], {"from": "gpt", "value": 42}]}),
    ("sharegpt-sft.schema.json", "value missing", {"conversations": [{"from": "human"}]}),
    ("sharegpt-sft.schema.json", "message not an object", {"conversations": ["Hi", "Hello"]}),
    ("sharegpt-sft.schema.json", "tools as a list", {"conversations": OK_SG, "tools": [{"name": "f"}]}),
    ("sharegpt-sft.schema.json", "system not a string", {"conversations": OK_SG, "system": ["x"]}),
    ("sharegpt-sft.schema.json", "images number", {"conversations": OK_SG, "images": 3}),
    ("sharegpt-preference.schema.json", "chosen as a string", {"conversations": OK_SG[:1], "chosen": "good", "rejected": {"from": "gpt", "value": "bad"}}),
    ("sharegpt-preference.schema.json", "rejected as a list", {"conversations": OK_SG[:1], "chosen": {"from": "gpt", "value": "good"}, "rejected": [{"from": "gpt", "value": "bad"}]}),
    ("sharegpt-preference.schema.json", "chosen from human", {"conversations": OK_SG[:1], "chosen": {"from": "human", "value": "good"}, "rejected": {"from": "gpt", "value": "bad"}}),
    ("sharegpt-preference.schema.json", "rejected from observation", {"conversations": OK_SG[:1], "chosen": {"from": "gpt", "value": "good"}, "rejected": {"from": "observation", "value": "bad"}}),
    ("sharegpt-preference.schema.json", "missing rejected", {"conversations": OK_SG[:1], "chosen": {"from": "gpt", "value": "good"}}),
    ("sharegpt-kto.schema.json", 'kto_tag "true"', {"conversations": OK_SG, "kto_tag": "true"}),
    ("sharegpt-kto.schema.json", "missing kto_tag", {"conversations": OK_SG}),
    ("sharegpt-kto.schema.json", 'role "bot"', {"conversations": [{"from": "bot", "value": "x"}], "kto_tag": True}),
    # openai
    ("openai-messages.schema.json", "empty messages", {"messages": []}),
    ("openai-messages.schema.json", "conversations instead of messages", {"conversations": [*Q, *A]}),
    ("openai-messages.schema.json", 'role "bot"', {"messages": [*Q, {"role": "bot", "content": "x"}]}),
    ("openai-messages.schema.json", 'role "human"', {"messages": [{"role": "human", "content": "x"}]}),
    ("openai-messages.schema.json", "content a number", {"messages": [{"role": "user", "content": 5}]}),
    ("openai-messages.schema.json", "content missing", {"messages": [{"role": "user"}]}),
    ("openai-messages.schema.json", "null content without tool_calls", {"messages": [*Q, {"role": "assistant", "content": None}]}),
    ("openai-messages.schema.json", "null content with empty tool_calls", {"messages": [*Q, {"role": "assistant", "content": None, "tool_calls": []}]}),
    ("openai-messages.schema.json", "null user content", {"messages": [{"role": "user", "content": None, "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{}"}}]}]}),
    ("openai-messages.schema.json", "arguments as a list", {"messages": [*Q, {"role": "assistant", "content": None, "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": [1]}}]}]}),
    ("openai-messages.schema.json", "tool call without type", {"messages": [*Q, {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}]}),
    ("openai-messages.schema.json", "unknown part type", {"messages": [{"role": "user", "content": [{"type": "video", "video": "v.mp4"}]}]}),
    ("openai-messages.schema.json", "text part without text", {"messages": [{"role": "user", "content": [{"type": "text"}]}]}),
    ("openai-messages.schema.json", "image_url as bare string", {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "https://x/y.png"}]}]}),
    ("openai-messages.schema.json", "empty part list", {"messages": [{"role": "user", "content": []}]}),
    ("openai-messages.schema.json", "tool without function", {"messages": [*Q, *A], "tools": [{"type": "function", "name": "f"}]}),
    ("vendor-preference.schema.json", "preferred_output as a message", {"input": {"messages": Q}, "preferred_output": A[0], "non_preferred_output": A}),
    ("vendor-preference.schema.json", "two preferred messages", {"input": {"messages": Q}, "preferred_output": [*A, *A], "non_preferred_output": A}),
    ("vendor-preference.schema.json", "user as output", {"input": {"messages": Q}, "preferred_output": A, "non_preferred_output": Q}),
    ("vendor-preference.schema.json", "messages at top level", {"messages": Q, "preferred_output": A, "non_preferred_output": A}),
    ("vendor-preference.schema.json", "tools as string", {"input": {"messages": Q, "tools": "[]"}, "preferred_output": A, "non_preferred_output": A}),
    # TRL
    ("trl-language-modeling.schema.json", "a TRL key of another type", {"text": "x", "prompt": "web"}),
    ("trl-language-modeling.schema.json", "text and messages", {"text": "x", "messages": [*Q, *A]}),
    ("trl-language-modeling.schema.json", "conversations instead of messages", {"conversations": [*Q, *A]}),
    ("trl-language-modeling.schema.json", "sharegpt messages", {"messages": OK_SG}),
    ("trl-language-modeling.schema.json", 'role "bot"', {"messages": [{"role": "bot", "content": "x"}]}),
    ("trl-language-modeling.schema.json", "empty messages", {"messages": []}),
    ("trl-language-modeling.schema.json", "content missing", {"messages": [{"role": "user"}]}),
    ("trl-prompt-only.schema.json", "prompt and completion", {"prompt": "x", "completion": "y"}),
    ("trl-prompt-only.schema.json", "prompt not string or list", {"prompt": 3}),
    ("trl-prompt-completion.schema.json", "mixed standard and conversational", {"prompt": "x", "completion": A}),
    ("trl-prompt-completion.schema.json", "missing completion", {"prompt": "x"}),
    ("trl-prompt-completion.schema.json", "a TRL key of another type", {"prompt": "x", "completion": "y", "messages": []}),
    ("trl-preference.schema.json", "chosen as message object", {"prompt": Q, "chosen": A[0], "rejected": A}),
    ("trl-preference.schema.json", "only chosen", {"prompt": "x", "chosen": "y"}),
    ("trl-preference.schema.json", "messages beside the pair", {"prompt": "x", "chosen": "y", "rejected": "z", "messages": "w"}),
    ("trl-preference.schema.json", "mixed forms", {"prompt": "x", "chosen": A, "rejected": A}),
    ("trl-unpaired-preference.schema.json", 'label "true"', {"prompt": "x", "completion": "y", "label": "true"}),
    ("trl-unpaired-preference.schema.json", "missing label", {"prompt": "x", "completion": "y"}),
    ("trl-unpaired-preference.schema.json", "kto_tag instead of label", {"prompt": "x", "completion": "y", "kto_tag": True}),
    ("multimodal.schema.json", "videos number", {"videos": 1}),
    ("multimodal.schema.json", "audios nested list", {"audios": [["a.wav"]]}),
]
# fmt: on


@pytest.mark.parametrize(("name", "case", "instance"), VALID, ids=[f"{n}:{c}" for n, c, _ in VALID])
def test_valid_records_pass(name: str, case: str, instance: Any) -> None:
    assert verdicts(name, instance) == (True, True), [e.message for e in PY[name].iter_errors(instance)]


@pytest.mark.parametrize(("name", "case", "instance"), INVALID, ids=[f"{n}:{c}" for n, c, _ in INVALID])
def test_invalid_records_fail(name: str, case: str, instance: Any) -> None:
    assert verdicts(name, instance) == (False, False)


def test_tables_cover_every_schema() -> None:
    assert {n for n, _, _ in VALID} | {n for n, _, _ in INVALID} >= EXPECTED_FILES - {"multimodal.schema.json"}
    assert {n for n, _, _ in INVALID} == EXPECTED_FILES


# --------------------------------------------------------------------------- how the media fields combine


@pytest.mark.parametrize("name", MEDIA_FORMS)
def test_media_forms_include_the_multimodal_schema(name: str) -> None:
    assert {"$ref": "multimodal.schema.json"} in SCHEMAS[name]["allOf"]
    example = copy.deepcopy(SCHEMAS[name]["examples"][0])
    for field in ("images", "videos", "audios"):
        assert verdicts(name, {**example, field: ["m.bin"]}) == (True, True)
        assert verdicts(name, {**example, field: "m.bin"}) == (True, True)
        assert verdicts(name, {**example, field: [1]}) == (False, False)
        assert verdicts(name, {**example, field: None}) == (False, False)


# --------------------------------------------------------------------------- properties

JSON_SCALARS = st.one_of(st.none(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text())
JSON_VALUES = st.recursive(JSON_SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3), max_leaves=6)


@given(value=JSON_VALUES)
def test_kto_labels_must_be_json_booleans(value: Any) -> None:
    record = {"instruction": "q", "output": "a", "kto_tag": value}
    assert verdicts("alpaca-kto.schema.json", record) == (False, False)
    trl = {"prompt": "q", "completion": "a", "label": value}
    assert verdicts("trl-unpaired-preference.schema.json", trl) == (False, False)


@given(instruction=st.text(), inp=st.text(), output=st.text(), label=st.booleans())
def test_any_strings_make_a_valid_alpaca_record(instruction: str, inp: str, output: str, label: bool) -> None:
    record = {"instruction": instruction, "input": inp, "output": output}
    assert verdicts("alpaca-sft.schema.json", record) == (True, True)
    assert verdicts("alpaca-kto.schema.json", {**record, "kto_tag": label}) == (True, True)
