"""FMT7xx: tool schemas and function calls (ShareGPT's tools / function_call, OpenAI's tool_calls)."""

from __future__ import annotations

import orjson

from fmtkit.rules import ERROR, WARNING, json_type, rule
from fmtkit.rules.view import EntryView


def _loads(text):
    try:
        return orjson.loads(text), None
    except orjson.JSONDecodeError as exc:
        return None, str(exc)


@rule("FMT701", "bad-tools", ERROR, "make tools a JSON list of function schemas (objects with a name)", applies=lambda v: v.entry.tools is not None)
def bad_tools(rec: dict, view: EntryView):
    """The tools column is not a JSON list of function schemas.

    Alpaca and ShareGPT keep tools as a JSON *string*: their readers pass a
    list through, and the template's ``json.loads`` stops on it. Only the
    openai reader (``formatting: openai``) turns a list into the string. A
    single object is not a list either: its keys would be taken as tools. Each
    schema needs a ``name`` (directly or under ``function``).

    Passes::

        # entry: {"formatting": "sharegpt", "columns": {"messages": "conversations", "tools": "tools"}}
        # demo.jsonl
        {"conversations": [{"from": "human", "value": "Weather in Paris?"}, {"from": "gpt", "value": "Sunny."}], "tools": "[{\\"name\\": \\"get_weather\\", \\"parameters\\": {\\"type\\": \\"object\\"}}]"}

    Fails::

        # entry: {"formatting": "sharegpt", "columns": {"messages": "conversations", "tools": "tools"}}
        # demo.jsonl
        {"conversations": [{"from": "human", "value": "Weather in Paris?"}, {"from": "gpt", "value": "Sunny."}], "tools": "[{name: get_weather}]"}
    """
    v = rec.get(view.entry.tools)
    if v is None or v == "":
        return None
    if type(v) is list and v and view.entry.formatting != "openai":
        return f"tools is a list, not a JSON string: LLaMA-Factory's {view.entry.formatting} reader passes it on and its template fails (json.loads of a list); write it as a JSON string"
    if type(v) is str:
        v, err = _loads(v)
        if err:
            return f"tools is not valid JSON: {err}"
    if type(v) is dict:  # LLaMA-Factory's tool formatter iterates the list: an object's keys would be taken as tools
        return "tools is a single object, not a list of function schemas: wrap it in [ ]"
    if type(v) is not list:
        return f"tools is {json_type(v)}, not a list of function schemas"
    for i, t in enumerate(v):
        fn = t.get("function", t) if type(t) is dict else None
        if type(fn) is not dict or type(fn.get("name")) is not str:
            return f"tool {i} has no name"
    return None


def _check_call(call) -> str | None:
    if type(call) is not dict:
        return "is not an object"
    if type(call.get("name")) is not str:
        return "has no string 'name'"
    if "arguments" not in call:
        return "has no 'arguments'"
    args = call["arguments"]
    if type(args) is str:
        args, err = _loads(args)
        if err:
            return f"has arguments that are not valid JSON ({err})"
    if type(args) is not dict:
        return "has arguments that are not a JSON object"
    return None


@rule("FMT702", "bad-function-call", ERROR, 'write the call as JSON: {"name": ..., "arguments": {...}} (or a list of such)', applies=lambda v: v.entry.is_conversation and v.entry.function_tag is not None)
def bad_function_call(rec: dict, view: EntryView):
    """A function_call message's content is not JSON with `name` and `arguments`.

    Passes::

        # entry: {"formatting": "sharegpt", "columns": {"messages": "conversations", "tools": "tools"}}
        # demo.jsonl
        {"conversations": [{"from": "human", "value": "Weather?"}, {"from": "function_call", "value": "{\\"name\\": \\"get_weather\\", \\"arguments\\": {\\"city\\": \\"Paris\\"}}"}, {"from": "observation", "value": "sunny"}, {"from": "gpt", "value": "Sunny."}], "tools": "[{\\"name\\": \\"get_weather\\"}]"}

    Fails::

        # entry: {"formatting": "sharegpt", "columns": {"messages": "conversations", "tools": "tools"}}
        # demo.jsonl
        {"conversations": [{"from": "human", "value": "Weather?"}, {"from": "function_call", "value": "get_weather(Paris)"}, {"from": "observation", "value": "sunny"}, {"from": "gpt", "value": "Sunny."}], "tools": "[{\\"name\\": \\"get_weather\\"}]"}
    """
    e = view.entry
    msgs = rec.get(e.messages) if e.messages else None
    if type(msgs) is not list:
        return None
    out = None
    sides = [rec.get(e.chosen), rec.get(e.rejected)] if e.ranking is True and e.chosen and e.rejected else []
    for i, m in enumerate(msgs + sides):
        if type(m) is dict and m.get(e.role_tag) == e.function_tag and type(m.get(e.content_tag)) is str:
            problem = function_call_problem(m[e.content_tag])
            if problem:
                out = (out or []) + [f"function call in message {i} {problem}"]
    return out


def function_call_problem(text: str) -> str | None:
    """What is wrong with a function_call message's text (FMT702), or None.

    >>> function_call_problem('{"name": "f", "arguments": {"x": 1}}'), function_call_problem("[]")
    (None, 'is an empty list')
    """
    value, err = _loads(text)
    if err:
        return f"is not valid JSON ({err})"
    if type(value) is not list:
        return _check_call(value)
    return next((p for p in map(_check_call, value) if p), None) if value else "is an empty list"


@rule("FMT703", "bad-tool-calls", ERROR, 'give each tool call {"type": "function", "function": {"name": ..., "arguments": {...}}}', applies=lambda v: v.entry.formatting == "openai" and v.entry.messages is not None)
def bad_tool_calls(rec: dict, view: EntryView):
    """An OpenAI `tool_calls` list is malformed (no function name, arguments not JSON).

    Only assistant messages are read for calls (LLaMA-Factory's openai reader
    ignores ``tool_calls`` on other roles, and an empty or null one).

    Passes::

        # entry: {"formatting": "openai", "columns": {"messages": "messages"}, "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant", "observation_tag": "tool", "system_tag": "system"}}
        # demo.jsonl
        {"messages": [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}, {"role": "tool", "content": "sunny"}, {"role": "assistant", "content": "Sunny."}]}

    Fails::

        # entry: {"formatting": "openai", "columns": {"messages": "messages"}, "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant", "observation_tag": "tool", "system_tag": "system"}}
        # demo.jsonl
        {"messages": [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": "{city: Paris}"}}]}, {"role": "tool", "content": "sunny"}, {"role": "assistant", "content": "Sunny."}]}
    """
    msgs = rec.get(view.entry.messages)
    if type(msgs) is not list:
        return None
    e = view.entry
    answer_roles = (e.assistant_tag, e.function_tag)
    for i, m in enumerate(msgs):
        if type(m) is dict and m.get("tool_calls") and m.get(e.role_tag) in answer_roles:
            calls = m["tool_calls"]
            if type(calls) is not list:
                return f"message {i}: tool_calls is not a list"
            for j, call in enumerate(calls):
                fn = call.get("function") if type(call) is dict else None
                problem = _check_call(fn) if fn is not None else "has no 'function'"
                if problem:
                    return f"message {i}: tool call {j} {problem}"
    return None


@rule("FMT704", "tool-calls-ignored", ERROR, 'set "formatting": "openai" so LLaMA-Factory reads tool_calls', applies=lambda v: v.entry.formatting == "sharegpt" and v.entry.messages is not None)
def tool_calls_ignored(rec: dict, view: EntryView):
    """A message carries OpenAI `tool_calls` but the entry's formatting is sharegpt.

    LLaMA-Factory's sharegpt reader only reads the content tag, so the call is
    lost and the model trains on an empty assistant turn. Its openai reader
    understands ``tool_calls``.

    Passes::

        # entry: {"formatting": "openai", "columns": {"messages": "messages"}, "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant", "observation_tag": "tool", "system_tag": "system"}}
        # demo.jsonl
        {"messages": [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {}}}]}, {"role": "tool", "content": "sunny"}, {"role": "assistant", "content": "Sunny."}]}

    Fails::

        # entry: {"formatting": "sharegpt", "columns": {"messages": "messages"}, "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant", "observation_tag": "tool", "system_tag": "system"}}
        # demo.jsonl
        {"messages": [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]}, {"role": "tool", "content": "sunny"}, {"role": "assistant", "content": "Sunny."}]}
    """
    msgs = rec.get(view.entry.messages)
    if type(msgs) is list:
        for i, m in enumerate(msgs):
            if type(m) is dict and m.get("tool_calls"):
                return f"message {i} has tool_calls, which formatting 'sharegpt' ignores"
    return None


@rule("FMT705", "tool-call-arguments-text", WARNING, "write each tool call's arguments as a JSON object (fmtkit convert --to openai --register does)",
      applies=lambda v: v.entry.formatting == "openai" and v.entry.messages is not None and not v.entry.name.startswith("<"))  # fmt: skip
def tool_call_arguments_text(rec: dict, view: EntryView):
    """An OpenAI tool call's `arguments` is JSON text, which LLaMA-Factory encodes a second time.

    OpenAI's API spells ``arguments`` as a string holding JSON. LLaMA-Factory's
    openai reader hands it to its function formatter, which ``json.dumps`` it
    again, so the model is trained to write ``"arguments": "{\\"city\\": ...}"``,
    a string of escaped JSON, instead of the object its chat template expects.
    Written as an object, the call trains as ShareGPT's ``function_call`` does.
    Checked for entries of a ``dataset_info.json`` only (a bare file may be
    meant for OpenAI's API).

    Passes::

        # entry: {"formatting": "openai", "columns": {"messages": "messages"}, "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant", "observation_tag": "tool", "system_tag": "system"}}
        # demo.jsonl
        {"messages": [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}, {"role": "tool", "content": "sunny"}, {"role": "assistant", "content": "Sunny."}]}

    Fails::

        # entry: {"formatting": "openai", "columns": {"messages": "messages"}, "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant", "observation_tag": "tool", "system_tag": "system"}}
        # demo.jsonl
        {"messages": [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}}]}, {"role": "tool", "content": "sunny"}, {"role": "assistant", "content": "Sunny."}]}
    """
    msgs = rec.get(view.entry.messages)
    if type(msgs) is not list:
        return None
    for i, m in enumerate(msgs):
        calls = m.get("tool_calls") if type(m) is dict else None
        if type(calls) is not list:
            continue
        for call in calls:
            fn = call.get("function") if type(call) is dict else None
            if type(fn) is dict and type(fn.get("arguments")) is str:
                return f"message {i}: tool call arguments are JSON text, which LLaMA-Factory encodes again (the model learns escaped JSON)"
    return None


@rule("FMT706", "text-beside-tool-calls", ERROR, "put the text in an assistant message of its own before the call, or drop it", applies=lambda v: v.entry.formatting == "openai" and v.entry.messages is not None)
def text_beside_tool_calls(rec: dict, view: EntryView):
    """An assistant message has text beside its `tool_calls`: LLaMA-Factory's openai reader drops the text.

    It writes the message as the calls alone, so the text ("Let me check.") is
    never trained.

    Passes::

        # entry: {"formatting": "openai", "columns": {"messages": "messages"}, "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant", "observation_tag": "tool", "system_tag": "system"}}
        # demo.jsonl
        {"messages": [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}, {"role": "tool", "content": "sunny"}, {"role": "assistant", "content": "Sunny."}]}

    Fails::

        # entry: {"formatting": "openai", "columns": {"messages": "messages"}, "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant", "observation_tag": "tool", "system_tag": "system"}}
        # demo.jsonl
        {"messages": [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": "Let me check.", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}, {"role": "tool", "content": "sunny"}, {"role": "assistant", "content": "Sunny."}]}
    """
    msgs = rec.get(view.entry.messages)
    if type(msgs) is not list:
        return None
    e = view.entry
    for i, m in enumerate(msgs):
        if type(m) is dict and m.get("tool_calls") and m.get(e.role_tag) in (e.assistant_tag, e.function_tag):
            text = m.get(e.content_tag)
            if type(text) is str and text.strip():
                return f"message {i} has text beside its tool calls: LLaMA-Factory's openai reader drops the text"
    return None
