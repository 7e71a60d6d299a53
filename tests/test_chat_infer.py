"""``fmtkit chat`` and ``fmtkit infer`` with the tiny test model (random weights: count tokens, never read text)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fmtkit.cli import cli, main
from fmtkit.errors import FmtkitError
from fmtkit.models.generate import GenerationSettings, prompt_messages, reference_answer
from fmtkit.models.infer import InferenceSummary, collect_prompts
from fmtkit.writing import write_lines
from fmtkit.sample import Sample, ToolCall, Turn

STATS = re.compile(r"^\((\d+) tokens(, cut at --max-new-tokens)?")


# -- prompts from samples (no model needed) -----------------------------------


def test_prompt_and_reference_of_each_kind() -> None:
    sft = Sample(system="Be brief.", turns=[Turn("user", "Hi"), Turn("assistant", "Hello"), Turn("user", "Bye"),
                                            Turn("assistant", "Ciao")])  # fmt: skip
    assert prompt_messages(sft) == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"},
    ]  # fmt: skip
    assert reference_answer(sft) == "Ciao"

    preference = Sample(turns=[Turn("user", "Do tigers eat grass?")], chosen=Turn("assistant", "No."),
                        rejected=Turn("assistant", "Yes."))  # fmt: skip
    assert prompt_messages(preference) == [{"role": "user", "content": "Do tigers eat grass?"}]
    assert reference_answer(preference) == "No."

    kto = Sample(turns=[Turn("user", "Q"), Turn("assistant", "A")], label=False)
    assert (prompt_messages(kto), reference_answer(kto)) == ([{"role": "user", "content": "Q"}], "A")

    prompt_only = Sample(turns=[Turn("user", "Q")])
    assert (prompt_messages(prompt_only), reference_answer(prompt_only)) == ([{"role": "user", "content": "Q"}], None)

    assert prompt_messages(Sample(text="pretraining text")) == []


def test_tool_turns_become_chat_template_messages() -> None:
    call = ToolCall("get_weather", {"city": "Paris"}, id="c1")
    sample = Sample(
        turns=[Turn("user", "Weather?"), Turn("assistant", tool_calls=[call], weight=0),
               Turn("tool", '{"sky": "clear"}', tool_call_id="c1"), Turn("assistant", tool_calls=[call])],
        tools=[{"type": "function", "function": {"name": "get_weather"}}],
    )  # fmt: skip
    messages = prompt_messages(sample)
    assert messages[1] == {"role": "assistant", "content": "",
                           "tool_calls": [{"id": "c1", "type": "function",
                                           "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}  # fmt: skip
    assert messages[2] == {"role": "tool", "content": '{"sky": "clear"}', "tool_call_id": "c1"}
    # an answer that is only a tool call is still a reference
    assert json.loads(reference_answer(sample) or "") == [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    (prompt,) = collect_prompts([sample])
    assert prompt.tools == sample.tools


def test_samples_without_a_prompt_are_counted() -> None:
    summary = InferenceSummary(output=Path("x"))
    prompts = collect_prompts([Sample(text="t"), Sample(system="only a system prompt"),
                               Sample(turns=[Turn("user", "<image>Q")], images=["a.png"])], summary)  # fmt: skip
    assert len(prompts) == 1 and (summary.skipped, summary.with_media) == (2, 1)


def test_greedy_unless_asked() -> None:
    assert not GenerationSettings().sampling
    assert GenerationSettings(do_sample=True).sampling and GenerationSettings(top_p=0.9).sampling
    assert not GenerationSettings(do_sample=True, temperature=0).sampling
    with pytest.raises(FmtkitError):
        GenerationSettings(max_new_tokens=0).check()


def test_greedy_clears_the_checkpoint_sampling_defaults() -> None:
    pytest.importorskip("transformers")
    from transformers import GenerationConfig

    from fmtkit.models.generate import generation_config

    class Model:  # Qwen checkpoints ship do_sample=True with temperature and top_p
        generation_config = GenerationConfig(do_sample=True, temperature=0.6, top_p=0.95, top_k=20, eos_token_id=[7, 8])

    class Tokenizer:
        eos_token_id, pad_token_id = 7, 0

    greedy = generation_config(Model(), Tokenizer(), GenerationSettings(max_new_tokens=3))
    assert (greedy.do_sample, greedy.temperature, greedy.top_p, greedy.max_new_tokens) == (False, 1.0, 1.0, 3)
    assert greedy.eos_token_id == [7, 8] and greedy.pad_token_id == 0
    sampled = generation_config(Model(), Tokenizer(), GenerationSettings(temperature=0.9))
    assert (sampled.do_sample, sampled.temperature, sampled.top_p) == (True, 0.9, 0.95)
    assert Model.generation_config.temperature == 0.6  # the model's own config is left alone


def test_output_is_replaced_atomically(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text("old\n")

    def failing() -> Any:
        yield "new line\n"
        raise RuntimeError("generation failed half-way")

    with pytest.raises(RuntimeError):
        write_lines(out, failing())
    assert out.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]  # no temporary file left
    write_lines(out, ["a\n", "b\n"])
    assert out.read_text() == "a\nb\n"
    assert out.stat().st_mode & 0o044  # a normal file, not mkstemp's private one


# -- with the tiny model --------------------------------------------------------


@pytest.fixture(scope="module")
def loaded(tiny_model: Path) -> Any:
    from fmtkit.models.loading import load_model

    return load_model(str(tiny_model), device="cpu")


@pytest.fixture(scope="module")
def tiny_adapter(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter on the tiny model, saved as training saves one (adapter_config.json names the base)."""
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(tiny_model))
    model = peft.get_peft_model(base, peft.LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"],
                                                      init_lora_weights=False))  # fmt: skip
    folder = tmp_path_factory.mktemp("adapter") / "sft-lora"
    model.save_pretrained(folder)
    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_model)
    return folder


def test_batched_generation_counts_new_tokens(loaded: Any) -> None:
    from fmtkit.models.generate import generate

    prompts = [[{"role": "user", "content": "Hi"}],
               [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is the capital of France?"}],
               [{"role": "user", "content": "1 + 1 ="}]]  # fmt: skip
    exact = GenerationSettings(max_new_tokens=5, min_new_tokens=5)
    results = generate(loaded, prompts, exact)
    assert [(r.tokens, r.stopped) for r in results] == [(5, False)] * 3
    capped = generate(loaded, prompts, GenerationSettings(max_new_tokens=4))
    assert all(1 <= r.tokens <= 4 for r in capped)
    assert [r.text for r in generate(loaded, prompts, GenerationSettings(max_new_tokens=4))] == [r.text for r in capped]


def test_chat_session_keeps_history_and_resets(loaded: Any) -> None:
    from fmtkit.models.chat import ChatSession

    pieces: list[str] = []
    session = ChatSession(loaded, GenerationSettings(max_new_tokens=4, min_new_tokens=4), system="Be brief.")
    first = session.send("Hello", on_text=pieces.append)
    assert first.tokens == 4 and "".join(pieces) == first.text
    session.send("And then?")
    assert [m["role"] for m in session.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert session.messages[2]["content"] == first.text
    session.reset()
    assert session.messages == [{"role": "system", "content": "Be brief."}]


def _invoke(args: list[str], stdin: str | None = None) -> Any:
    result = CliRunner().invoke(cli, args, input=stdin, catch_exceptions=True)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def _answers(stderr: str) -> list[int]:
    return [int(m[1]) for line in stderr.splitlines() if (m := STATS.match(line))]


def test_chat_through_piped_stdin(tiny_model: Path) -> None:
    stdin = "Hello\n\n/reset\nWhat is 1+1?\n/exit\nnever sent\n"
    result = _invoke(["chat", str(tiny_model), "--max-new-tokens", "4", "--system", "Be brief.", "--device", "cpu"], stdin)
    assert result.exit_code == 0, result.stderr
    tokens = _answers(result.stderr)
    assert len(tokens) == 2 and all(1 <= n <= 4 for n in tokens)  # /exit stops before the last line
    assert result.stderr.count("(conversation forgotten)") == 1
    assert "Chatting with" not in result.stderr  # the banner is for terminals only


def test_chat_prints_control_characters_of_an_answer_escaped(tiny_model: Path, tmp_path: Path) -> None:
    """A model that answers with an escape sequence cannot drive the terminal: the answer is shown with ``\\x1b``."""
    import shutil

    from transformers import AutoTokenizer, GenerationConfig

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    (esc,) = AutoTokenizer.from_pretrained(model).encode("\x1b", add_special_tokens=False)
    GenerationConfig(sequence_bias=[[[esc], 100.0]]).save_pretrained(model)  # greedy decoding then writes ESC
    result = _invoke(["chat", str(model), "--max-new-tokens", "3", "--device", "cpu"], "Hello\n")
    assert result.exit_code == 0, result.stderr
    assert "\\x1b" in result.stdout and "\x1b" not in result.stdout


def test_chat_with_an_adapter_alone(tiny_adapter: Path, tiny_model: Path) -> None:
    from peft import PeftModel

    from fmtkit.models.loading import load_model

    loaded = load_model(None, tiny_adapter, device="cpu")
    assert loaded.base == str(tiny_model) and isinstance(loaded.model, PeftModel)
    result = _invoke(["chat", "--adapter", str(tiny_adapter), "--max-new-tokens", "3", "--device", "cpu"], "Hi\n")
    assert result.exit_code == 0, result.stderr
    assert len(_answers(result.stderr)) == 1


def _dataset(tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    records = [
        {"instruction": "Hello", "output": "Hi"},
        {"instruction": "What is the capital of France?", "input": "Answer in one word.", "output": "Paris",
         "system": "Be brief."},
        {"instruction": "And of Germany?", "output": "Berlin", "history": [["Capital of France?", "Paris"]]},
        {"instruction": "Translate: good morning", "output": "bonjour"},
        {"instruction": "1 + 1 =", "output": "2"},
    ]  # fmt: skip
    path = tmp_path / "alpaca.json"
    path.write_text(json.dumps(records, ensure_ascii=False))
    return path, records


def test_infer_writes_one_record_per_prompt(tiny_model: Path, tmp_path: Path) -> None:
    data, records = _dataset(tmp_path)
    out = tmp_path / "pred.jsonl"
    result = _invoke(["infer", str(tiny_model), "--dataset", str(data), "-o", str(out), "--max-new-tokens", "6",
                      "--batch-size", "2", "--device", "cpu"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == len(records)
    for line, record in zip(lines, records, strict=True):  # the dataset's order, though batched by length
        assert set(line) == {"prompt", "reference", "prediction", "new_tokens"}
        assert line["reference"] == record["output"]
        assert line["prompt"][-1]["role"] == "user" and line["prompt"][-1]["content"].startswith(record["instruction"])
        assert all(set(m) == {"role", "content"} for m in line["prompt"])
        assert isinstance(line["prediction"], str) and 1 <= line["new_tokens"] <= 6
    assert lines[1]["prompt"][0] == {"role": "system", "content": "Be brief."}
    assert [m["role"] for m in lines[2]["prompt"]] == ["user", "assistant", "user"]
    assert f"wrote {len(records)} predictions to {out}" in result.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_infer_with_an_adapter_and_exact_lengths(loaded: Any, tiny_adapter: Path, tmp_path: Path) -> None:
    import fmtkit
    from fmtkit.models.infer import infer_dataset
    from fmtkit.models.loading import load_model

    data, records = _dataset(tmp_path)
    progress: list[int] = []
    summary = infer_dataset(load_model(None, tiny_adapter, device="cpu"), fmtkit.read(data), tmp_path / "o.jsonl",
                            GenerationSettings(max_new_tokens=3, min_new_tokens=3), batch_size=4,
                            on_start=progress.append, on_progress=progress.append)  # fmt: skip
    assert progress == [5, 4, 1]  # total, then each batch
    assert (summary.written, summary.new_tokens, summary.cut) == (5, 15, 5)
    assert [json.loads(line)["new_tokens"] for line in (tmp_path / "o.jsonl").read_text().splitlines()] == [3] * 5


def test_errors_reach_the_user_as_one_line(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, _ = _dataset(tmp_path)
    text_only = tmp_path / "pretrain.json"
    text_only.write_text(json.dumps([{"text": "just text"}]))
    cases = [
        (["infer", str(tiny_model), "--dataset", str(data), "-o", str(tmp_path / "no" / "o.jsonl")], 2, "does not exist"),
        (["infer", str(tiny_model), "--dataset", str(text_only), "-o", str(tmp_path / "o.jsonl")], 1, "no prompt"),
        (["infer", str(tmp_path / "nothing"), "--dataset", str(data), "-o", str(tmp_path / "o.jsonl")], 2, "no model folder"),
        (["chat", "--adapter", str(tmp_path)], 2, "no adapter_config.json"),
        (["chat"], 2, "give a MODEL"),
    ]
    for args, code, message in cases:
        with pytest.raises(SystemExit) as exited:
            main([*args, "--device", "cpu"])
        err = capsys.readouterr().err
        assert exited.value.code == code, (args, err)
        assert err.splitlines()[-1].startswith("error: ") and message in err, (args, err)


def test_help_imports_no_model_stack() -> None:
    code = (
        "import sys\n"
        "from fmtkit.cli import main\n"
        "for args in (['--help'], ['download', '--help'], ['chat', '--help'], ['infer', '--help']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit as exc:\n"
        "        assert not exc.code, args\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'huggingface_hub') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
