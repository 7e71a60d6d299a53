"""Chat templates by LLaMA-Factory name: the one registry of ``fmtkit train``, ``stats`` and ``render``.

``template: qwen3`` in a training config and ``--template qwen3`` on
``fmtkit stats`` / ``fmtkit render`` take the same names (or the path of a
``.jinja`` file) and replace the tokenizer's own chat template. Every template
wraps each assistant answer, its end-of-turn token included, in
``{% generation %}...{% endgeneration %}``, so TRL can train on the
assistant's tokens only (and the model learns to stop). As LLaMA-Factory
does, the separator a template writes after the end-of-turn token (chatml's
newline after ``<|im_end|>``) is trained with the answer; ``train_separator=False``
moves it to the start of the next turn, untrained. The tokenizer saved
with the adapter keeps the template, so chat and inference format prompts
exactly as training did.

``chat_template(name, markers=False)`` is the same text without the markers,
as most checkpoints ship their template: assistant-only loss then masks every
token (TRL refuses it), which ``fmtkit render`` warns about.

A template is a :class:`ChatFormat`: a few strings, turned into Jinja by
:meth:`ChatFormat.jinja`. A new template is one more entry in :data:`TEMPLATES`.
Pure strings: importing this module imports nothing heavy.

>>> "{%- generation %}" in chat_template("qwen3")
True
>>> has_generation_markers(chat_template("qwen3", markers=False))
False
>>> sorted(TEMPLATES)[:3]
['chatml', 'default', 'empty']
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from fmtkit.errors import FmtkitError

# Qwen's tool prompt (Qwen2.5 / Qwen3 format): tools listed in the system turn,
# calls as JSON inside <tool_call>, results as <tool_response> inside a user turn.
# As LLaMA-Factory writes it: after the system prompt, two newlines first even without one
# (Qwen's own template then starts the system turn with "# Tools").
_QWEN_TOOLS_HEADER = (
    "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
_QWEN_TOOLS_FOOTER = (
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments "
    "within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)

# Llama 3.1's JSON tool calling (its "tools not in the user message" prompt, as LLaMA-Factory writes it):
# the tools, each OpenAI-wrapped and indented by 4, follow this text in the system turn, dated today;
# a call is {"name": ..., "parameters": {...}}, several calls a JSON list of them.
_LLAMA3_TOOLS_HEADER = (
    "Cutting Knowledge Date: December 2023\nToday Date: {date}\n\n"
    "You have access to the following functions. To call a function, please respond with JSON for a function call. "
    'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}. '
    "Do not use variables.\n\n"
)

# LLaMA-Factory's default tool prompt (its chatml, default and empty templates), appended to the system
# prompt without a separator. {tools}: per tool "> Tool Name: ...\nTool Description: ...\nTool Args:\n"
# then one "  - NAME (TYPE[, required]): DESCRIPTION[, should be one of [...]][, where each item should be
# TYPE]\n" line per argument, then "\n"; {names}: the tool names, comma-separated.
_DEFAULT_TOOLS_PROMPT = (
    "You have access to the following tools:\n{tools}Use the following format if using a tool:\n```\n"
    "Action: tool name (one of [{names}])\nAction Input: the input to the tool, in a JSON format representing "
    'the kwargs (e.g. ```{"input": "hello world", "num_beams": 5}```)\n```\n'
)


@dataclass(frozen=True)
class ChatFormat:
    """The strings around each kind of turn; ``{content}`` marks where the text goes.

    ``tool_style`` says how tools, tool calls and tool results are written:
    ``qwen`` (``<tool_call>`` JSON, results in ``<tool_response>`` inside a user
    turn), ``llama3`` (Llama 3.1's tool prompt in the system turn, calls as
    ``{"name": ..., "parameters": ...}`` JSON, results as a ``tool`` turn) or
    ``default`` (LLaMA-Factory's default: "You have access to the following tools:"
    after the system prompt, calls as ``Action:`` / ``Action Input:`` lines, results
    as a ``tool`` turn).
    """

    system: str
    user: str
    assistant_prefix: str
    assistant_suffix: str  # the end-of-turn (stop) text, trained with the answer; "" = the EOS token
    separator: str = ""  # after each assistant turn, outside the trained part
    default_system: str = ""
    prefix: str = ""  # once, at the very start (e.g. a BOS token)
    tool: str = ""  # one tool result; empty for the qwen style
    tool_style: str = "qwen"
    empty_think: bool = False  # Qwen3: answers without <think> get an empty think block
    stop_token: str | None = None

    def jinja(self, markers: bool = True, train_separator: bool = True, enable_thinking: bool = True) -> str:
        """The Jinja chat template (transformers' dialect).

        ``markers``: ``{% generation %}`` around each answer and its stop. ``train_separator``:
        the separator after the stop (chatml's newline) is part of the answer, trained as
        LLaMA-Factory trains it; False: it opens the next turn and is never trained.
        ``enable_thinking`` (Qwen3): the default of the template variable of that name; False
        puts the empty think block in the prompt, untrained, as LLaMA-Factory does.
        """

        def lit(text: str) -> str:
            return json.dumps(text, ensure_ascii=False)

        def wrap(fmt: str, expr: str) -> str:
            before, _, after = fmt.partition("{content}")
            return " + ".join(
                part for part in (lit(before) if before else "", expr, lit(after) if after else "") if part
            )

        j: list[str] = [
            "{%- set ns = namespace(system=" + lit(self.default_system) + ", messages=messages, tools='', names='', args='') %}",
            "{%- if messages and messages[0]['role'] == 'system' %}"
            "{%- set ns.system = messages[0]['content'] %}{%- set ns.messages = messages[1:] %}{%- endif %}",
        ]
        if self.empty_think:
            j.append(
                "{%- set thinking = enable_thinking if enable_thinking is defined else "
                + ("true" if enable_thinking else "false")
                + " %}"
            )
        if self.tool_style == "qwen":
            j.append(
                "{%- if tools %}{%- set ns.system = ns.system + " + lit(_QWEN_TOOLS_HEADER)
                + " %}{%- for tool in tools %}"
                # LLaMA-Factory's bare function schemas get OpenAI's {"type": "function", ...} wrapper.
                "{%- if tool['type'] is not defined %}{%- set tool = {'type': 'function', 'function': tool} %}{%- endif %}"
                "{%- set ns.system = ns.system + '\\n' + (tool | tojson) %}"
                "{%- endfor %}{%- set ns.system = ns.system + " + lit(_QWEN_TOOLS_FOOTER) + " %}{%- endif %}"
            )
        elif self.tool_style == "llama3":
            header = lit(_LLAMA3_TOOLS_HEADER).replace("{date}", '" + strftime_now("%d %b %Y") + "')
            j.append(
                "{%- if tools %}{%- set ns.system = ns.system + " + header + " %}{%- for tool in tools %}"
                "{%- if tool['type'] != 'function' %}{%- set tool = {'type': 'function', 'function': tool} %}{%- endif %}"
                "{%- set ns.system = ns.system + (tool | tojson(indent=4)) + '\\n\\n' %}{%- endfor %}{%- endif %}"
            )
        else:  # LLaMA-Factory's default tool prompt; a bare function schema or OpenAI's wrapper around one
            prompt = lit(_DEFAULT_TOOLS_PROMPT).replace("{tools}", '" ~ ns.tools ~ "').replace("{names}", '" ~ ns.names ~ "')
            j.append(
                "{%- if tools %}{%- for tool in tools %}"
                "{%- if tool.get('type') == 'function' %}{%- set tool = tool['function'] %}{%- endif %}"
                "{%- set params = tool.get('parameters') or {} %}{%- set ns.args = '' %}"
                "{%- for name, param in (params.get('properties') or {}).items() %}"
                "{%- set ns.args = ns.args ~ '  - ' ~ name ~ ' (' ~ param.get('type', '')"
                " ~ (', required' if name in (params.get('required') or []) else '') ~ '): ' ~ param.get('description', '')"
                " ~ (', should be one of [' ~ param['enum'] | join(', ') ~ ']' if param.get('enum') else '')"
                " ~ (', where each item should be ' ~ param['items'].get('type', '') if param.get('items') else '') ~ '\\n' %}"
                "{%- endfor %}"
                "{%- set ns.tools = ns.tools ~ '> Tool Name: ' ~ tool['name'] ~ '\\nTool Description: '"
                " ~ tool.get('description', '') ~ '\\nTool Args:\\n' ~ ns.args ~ '\\n' %}"
                "{%- set ns.names = ns.names ~ (', ' if not loop.first else '') ~ tool['name'] %}"
                "{%- endfor %}{%- set ns.system = ns.system ~ " + prompt + " %}{%- endif %}"
            )
        if self.prefix:
            j.append("{{- " + lit(self.prefix) + " }}")
        j.append("{%- if ns.system %}{{- " + wrap(self.system, "ns.system") + " }}{%- endif %}")
        j.append("{%- for message in ns.messages %}")
        separate = self.separator and not train_separator  # the separator opens the turn after an answer
        if separate:
            j.append(
                "{%- if not loop.first and ns.messages[loop.index0 - 1]['role'] == 'assistant' %}{{- "
                + lit(self.separator)
                + " }}{%- endif %}"
            )
        j.append("{%- if message['role'] == 'user' %}{{- " + wrap(self.user, "message['content']") + " }}")
        j.append("{%- elif message['role'] == 'assistant' %}{{- " + lit(self.assistant_prefix) + " }}")
        content = "message['content']"
        if self.empty_think:
            # Qwen3 and LLaMA-Factory: earlier answers are context, their thoughts dropped; the last message,
            # if an answer without a think block, gets an empty one (with think_in_history, every answer: as
            # LLaMA-Factory trains multi-turn SFT). enable_thinking false: thoughts dropped, the empty block
            # goes in the prompt, untrained.
            content = "content"
            j.append(
                "{%- set content = message['content'] %}"
                "{%- set answer = loop.last or (think_in_history is defined and think_in_history) %}"
                "{%- if (not thinking or not answer) and '</think>' in content %}"
                "{%- set content = content.split('</think>')[-1].lstrip('\\n') %}{%- endif %}"
                "{%- set empty = answer and '<think>' not in content and '</think>' not in content %}"
                "{%- if empty and not thinking %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
            )
        if markers:
            j.append("{%- generation %}")
        if self.empty_think:
            j.append("{%- if empty and thinking %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}")
        j.append("{{- " + content + " }}")
        call = (
            "'<tool_call>\\n{\"name\": ' + (call['function']['name'] | tojson) + ', \"arguments\": ' + args + '}\\n</tool_call>'"
            if self.tool_style == "qwen"
            else "'Action: ' + call['function']['name'] + '\\nAction Input: ' + args"
        )
        args = (
            "{%- if call['function']['arguments'] is string %}{%- set args = call['function']['arguments'] %}"
            "{%- else %}{%- set args = call['function']['arguments'] | tojson %}{%- endif %}"
        )
        if self.tool_style == "llama3":  # one call: its object; several: a JSON list of them (as LLaMA-Factory)
            j.append(
                "{%- if message.get('tool_calls') %}{%- set many = message['tool_calls'] | length > 1 %}"
                "{{- '[' if many else '' }}{%- for call in message['tool_calls'] %}" + args +
                "{{- (', ' if not loop.first else '') + '{\"name\": ' + (call['function']['name'] | tojson)"
                " + ', \"parameters\": ' + args + '}' }}{%- endfor %}{{- ']' if many else '' }}{%- endif %}"
            )
        else:
            j.append(
                "{%- if message.get('tool_calls') %}{%- for call in message['tool_calls'] %}" + args +
                "{%- if not loop.first or " + content + " %}{{- '\\n' }}{%- endif %}"
                "{{- " + call + " }}{%- endfor %}{%- endif %}"
            )
        stop = lit(self.assistant_suffix) if self.assistant_suffix else "eos_token"
        if self.separator and train_separator:
            stop += " + " + lit(self.separator)
        j.append("{{- " + stop + " }}" + ("{%- endgeneration %}" if markers else ""))
        if self.tool_style == "qwen":
            j.append(
                "{%- elif message['role'] == 'tool' %}"
                "{%- if loop.first or ns.messages[loop.index0 - 1]['role'] != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}"
                "{{- '\\n<tool_response>\\n' + message['content'] + '\\n</tool_response>' }}"
                "{%- if loop.last or ns.messages[loop.index0 + 1]['role'] != 'tool' %}{{- '<|im_end|>\\n' }}{%- endif %}"
            )
        else:
            j.append("{%- elif message['role'] == 'tool' %}{{- " + wrap(self.tool, "message['content']") + " }}")
        j.append("{%- endif %}{%- endfor %}")
        gen = "{%- if add_generation_prompt %}"
        if separate:
            gen += "{%- if ns.messages and ns.messages[-1]['role'] == 'assistant' %}{{- " + lit(self.separator) + " }}{%- endif %}"
        gen += "{{- " + lit(self.assistant_prefix) + " }}"
        if self.empty_think:  # Qwen3's switch: enable_thinking=False pre-fills an empty think block
            gen += "{%- if not thinking %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
        j.append(gen + "{%- endif %}")
        return "".join(j)


_CHATML = dict(
    system="<|im_start|>system\n{content}<|im_end|>\n",
    user="<|im_start|>user\n{content}<|im_end|>\n",
    assistant_prefix="<|im_start|>assistant\n",
    assistant_suffix="<|im_end|>",
    separator="\n",
    stop_token="<|im_end|>",
)

TEMPLATES: dict[str, ChatFormat] = {
    # LLaMA-Factory's chatml: its default tool format, results as a "tool" turn.
    "chatml": ChatFormat(**_CHATML, tool="<|im_start|>tool\n{content}<|im_end|>\n", tool_style="default"),
    "qwen": ChatFormat(
        **_CHATML, default_system="You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    ),
    "qwen3": ChatFormat(**_CHATML, empty_think=True),
    "qwen3_nothink": ChatFormat(**_CHATML),
    "llama3": ChatFormat(
        prefix="<|begin_of_text|>",
        system="<|start_header_id|>system<|end_header_id|>\n\n{content}<|eot_id|>",
        user="<|start_header_id|>user<|end_header_id|>\n\n{content}<|eot_id|>",
        assistant_prefix="<|start_header_id|>assistant<|end_header_id|>\n\n",
        assistant_suffix="<|eot_id|>",
        tool="<|start_header_id|>ipython<|end_header_id|>\n\n{content}<|eot_id|>",
        tool_style="llama3",
        stop_token="<|eot_id|>",
    ),
    # LLaMA-Factory's "default": plain "Human:/Assistant:" lines, answers end with the tokenizer's EOS.
    "default": ChatFormat(
        system="System: {content}\n",
        user="Human: {content}\n",
        assistant_prefix="Assistant: ",
        assistant_suffix="",
        separator="\n",
        tool="Observation: {content}\n",
        tool_style="default",
    ),
    # No markup at all: the turns' texts, each answer followed by the EOS token.
    "empty": ChatFormat(
        system="{content}",
        user="{content}",
        assistant_prefix="",
        assistant_suffix="",
        tool="{content}",
        tool_style="default",
    ),
}


_GENERATION = re.compile(r"\{%-?\s*generation\s*-?%\}")
_MARKER = re.compile(r"\{%(-?)\s*(?:end)?generation\s*(-?)%\}")  # either tag, its whitespace control captured


def has_generation_markers(template: str | None) -> bool:
    """Whether a template marks assistant text with ``{% generation %}`` (needed for assistant-only loss).

    >>> has_generation_markers(chat_template("chatml")), has_generation_markers(chat_template("chatml", markers=False))
    (True, False)
    >>> has_generation_markers(None)
    False
    """
    return bool(template) and _GENERATION.search(template) is not None


def chat_template(name_or_path: str, markers: bool = True, train_separator: bool = True, enable_thinking: bool = True) -> str:
    """The Jinja text of a template, by LLaMA-Factory name (:data:`TEMPLATES`) or path to a ``.jinja`` file.

    ``markers=False``: without the ``{% generation %}`` / ``{% endgeneration %}``
    tags (in a file's text, each becomes an empty comment with the same
    whitespace control, so the rendered text is unchanged). ``train_separator``
    and ``enable_thinking``: see :meth:`ChatFormat.jinja` (a file's text is taken as it is).

    >>> chat_template("chatml").count("endgeneration")
    1
    >>> chat_template("qwen2")
    Traceback (most recent call last):
    ...
    fmtkit.errors.FmtkitError: unknown template 'qwen2' (did you mean qwen, qwen3?); known: chatml, default, empty, llama3, qwen, qwen3, qwen3_nothink, or a path to a .jinja file
    """
    if name_or_path in TEMPLATES:
        return TEMPLATES[name_or_path].jinja(markers, train_separator, enable_thinking)
    path = Path(name_or_path)
    if path.suffix in (".jinja", ".j2") and path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise FmtkitError(f"{path} is not UTF-8 text (byte {exc.start}): save the template as UTF-8") from None
        return text if markers else _MARKER.sub(lambda m: "{#" + m[1] + " " + m[2] + "#}", text)
    close = difflib.get_close_matches(name_or_path, TEMPLATES, n=2, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise FmtkitError(
        f"unknown template {name_or_path!r}{hint}; known: {', '.join(sorted(TEMPLATES))}, or a path to a .jinja file"
    )
