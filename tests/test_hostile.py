"""Hostile input: values that broke fmtkit once, and a fuzzer that keeps every command free of tracebacks.

Every command must end with a documented exit code (0, 1 or 2) and a clear
message, whatever ``dataset_info.json``, the data or the options hold.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import orjson
import pytest

from cli_runner import run_cli

DATASET = Path(__file__).resolve().parent.parent / "dataset"
BIG = 12345678901234567890123  # beyond 64 bits: orjson reads it as a float, and refuses to write it


@pytest.fixture
def ds(tmp_path: Path) -> Path:
    shutil.copytree(DATASET, tmp_path / "ds")
    return tmp_path / "ds"


# ---- values JSON allows and fast JSON libraries do not ------------------------------------


@pytest.mark.parametrize("source", ["a.jsonl", "a.json"])
@pytest.mark.parametrize("output", ["o.jsonl", "o.json"])
def test_big_integers_in_kept_fields_stay_exact(tmp_path: Path, capsys, source: str, output: str):
    rows = [{"instruction": "q", "output": "a", "id": BIG, "meta": {"n": -BIG}}, {"instruction": "q2", "output": "b", "id": 5, "meta": {"n": 1}}]
    text = json.dumps(rows) if source.endswith(".json") else "".join(json.dumps(r) + "\n" for r in rows)
    (tmp_path / source).write_text(text)
    code, _, err = run_cli(capsys, "convert", tmp_path / source, "--to", "sharegpt", "-o", tmp_path / output)
    assert code == 0, err
    raw = (tmp_path / output).read_text()
    got = json.loads(raw) if output.endswith(".json") else [json.loads(line) for line in raw.splitlines()]
    assert [(r["id"], r["meta"]["n"]) for r in got] == [(BIG, -BIG), (5, 1)]
    assert str(BIG) in raw and "e+22" not in raw


def test_big_integers_are_a_clear_error_for_parquet(tmp_path: Path, capsys):
    pytest.importorskip("pyarrow")
    (tmp_path / "a.jsonl").write_text(json.dumps({"instruction": "q", "output": "a", "id": BIG}) + "\n")
    code, _, err = run_cli(capsys, "convert", tmp_path / "a.jsonl", "--to", "sharegpt", "-o", tmp_path / "o.parquet")
    assert code == 2 and "cannot write parquet" in err and "write .jsonl instead" in err
    assert not (tmp_path / "o.parquet").exists()


def test_an_extra_field_nested_300_deep_is_converted(tmp_path: Path, capsys):
    deep: object = 1
    for _ in range(300):
        deep = [deep]
    (tmp_path / "a.jsonl").write_text(json.dumps({"instruction": "q", "output": "a", "extra": deep}) + "\n")
    code, out, err = run_cli(capsys, "convert", tmp_path / "a.jsonl", "--to", "sharegpt", "-o", tmp_path / "o.jsonl", "--output-format", "json")
    # converted exactly; the input check says `datasets` cannot load it (Arrow takes 63 levels): exit 1, FMT809
    assert code == 1 and [f["code"] for f in json.loads(out)["findings"]] == ["FMT809"], out + err
    assert json.loads((tmp_path / "o.jsonl").read_text())["extra"] == deep


def test_an_all_empty_object_column_is_a_clear_error_for_parquet(tmp_path: Path, capsys):
    pytest.importorskip("pyarrow")
    (tmp_path / "a.jsonl").write_bytes(b"".join(orjson.dumps({"instruction": f"q{i}", "output": "a", "meta": {}}) + b"\n" for i in range(3)))
    code, _, err = run_cli(capsys, "convert", tmp_path / "a.jsonl", "--to", "sharegpt", "-o", tmp_path / "o.parquet")
    assert code == 2 and "cannot write parquet" in err, err


# ---- escape sequences in data and names never reach the terminal -----------------------------------

HOSTILE_NAME = "evil\x1b[2J\x1b]8;;https://x.example\x1b\\link\x1b]8;;\x1b\\[/x]"
SGR = __import__("re").compile(r"\x1b\[[0-9;]*m")  # the colours fmtkit itself prints in a terminal


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    """A folder whose entry names and records carry escape sequences (ESC, CSI as one C1 byte, CR, bidi override)."""
    folder = tmp_path / "hostile"
    folder.mkdir()
    rows = [{"instruction": "hi\x1b[31mRED\x1b[0m\r", "output": "a\x9b2J b\u202e", "input": ""}, {"instruction": "x", "output": ""}]
    (folder / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "dataset_info.json").write_text(json.dumps({HOSTILE_NAME: {"file_name": "d.jsonl"}, "a[/x]": {"file_name": "d.jsonl"}}))
    return folder


def assert_no_control(text: str) -> None:
    """Nothing but fmtkit's own colours: no escape sequence, carriage return or C1 control from the data."""
    rest = SGR.sub("", text)
    assert not any(ch in rest for ch in "\x1b\r\x9b\u202e"), repr(rest[:400])


@pytest.mark.parametrize("colour", [False, True], ids=["pipe", "terminal"])
@pytest.mark.parametrize("args", [
    ["validate", "{d}"],
    ["validate", "{d}", "--entry", "nope\x1b[2J"],
    ["stats", "{d}"],
    ["convert", "{d}", "--entry", "a[/x]", "--to", "sharegpt", "-o", "{o}", "--show", "2"],
    ["convert", "{d}/d.jsonl", "--to", "sharegpt", "-o", "{o}", "--show", "2"],
], ids=["validate", "validate-unknown-entry", "stats", "convert-entry", "convert-file"])  # fmt: skip
def test_human_output_shows_control_characters_escaped(hostile: Path, tmp_path: Path, capsys, monkeypatch, args: list[str], colour: bool):
    if colour:
        monkeypatch.setenv("FORCE_COLOR", "1")
        monkeypatch.setenv("COLUMNS", "200")
    code, out, err = run_cli(capsys, *[a.format(d=hostile, o=tmp_path / "o.jsonl") for a in args])
    assert code in (0, 1, 2) and "Traceback" not in err
    assert_no_control(out + err)
    assert "\\x1b" in out + err or "\\x9b" in out + err  # shown, escaped


def test_render_title_is_never_markup_and_its_text_is_escaped(hostile: Path, tiny_model: Path, capsys):
    for name in ("a[/x]", HOSTILE_NAME):
        code, out, err = run_cli(capsys, "render", hostile, "--entry", name, "--tokenizer", tiny_model)
        assert code == 0, err
        assert_no_control(out + err)
        assert "\\x1b[31m" in out
    assert "a[/x] #0" in run_cli(capsys, "render", hostile, "--entry", "a[/x]", "--tokenizer", tiny_model)[1]


# ---- no network but `fmtkit download` ----------------------------------------------------------------


@pytest.mark.parametrize("command", [["stats", "{ds}", "--entry", "alpaca_demo", "--tokenizer", "nobody/tiny"],
                                     ["render", "{ds}", "--entry", "alpaca_demo", "--tokenizer", "nobody/tiny"]])  # fmt: skip
def test_commands_but_download_never_reach_a_hub(tmp_path: Path, command: list[str]):
    import os
    import subprocess
    import sys
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    pytest.importorskip("transformers")
    asked: list[str] = []

    class Hub(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_HEAD = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.endswith("_OFFLINE") and "proxy" not in k.lower()}
        env |= {"HF_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}", "HF_HOME": str(tmp_path / "hf"),
                "NO_PROXY": "127.0.0.1", "PYTHONPATH": str(DATASET.parent)}  # fmt: skip
        args = [a.format(ds=DATASET) for a in command]
        proc = subprocess.run([sys.executable, "-m", "fmtkit", *args], env=env, capture_output=True, text=True, timeout=300)
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert asked == []


# ---- media that read files outside the dataset ------------------------------------------------------


def test_media_links_out_of_the_folder_and_file_urls_are_errors(tmp_path: Path, capsys):
    folder = tmp_path / "ds"
    (folder / "media").mkdir(parents=True)
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    (folder / "media" / "evil.png").symlink_to(secret)
    (folder / "media" / "ok.png").write_bytes(b"PNG")
    (folder / "media" / "alias.png").symlink_to(folder / "media" / "ok.png")  # a link inside the folder is fine
    rows = [{"instruction": "<image>x", "input": "", "output": "y", "images": [img]} for img in ("media/evil.png", "media/alias.png", "file:///etc/passwd")]
    (folder / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "dataset_info.json").write_text(json.dumps({"d": {"file_name": "d.jsonl", "columns": {"images": "images"}}}))
    code, out, _ = run_cli(capsys, "validate", folder, "--output", "json")
    assert code == 1
    found = [(f["code"], f["record"]) for f in json.loads(out)["findings"] if f["code"] == "FMT606"]
    assert found == [("FMT606", 0), ("FMT606", 2)]


# ---- inputs that are not data files, entries whose names are not strings ----------------------------


@pytest.fixture
def odd_inputs(tmp_path: Path) -> Path:
    import os

    (tmp_path / "x.xml").write_text("<a/>")
    os.mkfifo(tmp_path / "fifo.jsonl")
    for folder, target in (("fifo_ds", None), ("zero_ds", "/dev/zero")):
        (tmp_path / folder).mkdir()
        if target is None:
            os.mkfifo(tmp_path / folder / "d.jsonl")
        else:
            (tmp_path / folder / "d.jsonl").symlink_to(target)
        (tmp_path / folder / "dataset_info.json").write_text(json.dumps({"d": {"file_name": "d.jsonl"}}))
    for folder, entry in (("cols", {"columns": {"prompt": 5, "response": ["output"]}}),
                          ("tags", {"formatting": "sharegpt", "columns": {"messages": "conversations"}, "tags": {"role_tag": 7}})):  # fmt: skip
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "d.jsonl").write_text('{"instruction": "q", "output": "a"}\n')
        (tmp_path / folder / "dataset_info.json").write_text(json.dumps({"d": {"file_name": "d.jsonl", **entry}}))
    return tmp_path


@pytest.mark.parametrize("command", ["validate", "convert", "stats"])
@pytest.mark.parametrize(("source", "words"), [
    ("x.xml", "fmtkit reads .json"), ("fifo.jsonl", "not a regular file"), ("fifo_ds", "not a regular file"),
    ("zero_ds", "not a regular file"), ("cols", "not a string"), ("tags", "not a string"),
])  # fmt: skip
def test_inputs_fmtkit_cannot_read_are_clear_errors(odd_inputs: Path, capsys, command: str, source: str, words: str):
    args = [command, odd_inputs / source]
    if command == "convert":
        args += ["--to", "sharegpt", "-o", odd_inputs / "o.jsonl"]
    code, out, err = run_cli(capsys, *args)
    assert "Traceback" not in err
    if command == "validate" and source != "x.xml":  # validate reports what it cannot read as findings (FMT206, FMT120)
        assert code == 1, out + err
        return
    assert code == 2, out + err
    assert words in err


# ---- models, templates and configs that are not what they claim -------------------------------------


@pytest.fixture
def odd_models(tmp_path: Path, tiny_model: Path) -> Path:
    (tmp_path / "bad_syntax.jinja").write_text("{% for m in messages %}{{ m.content \n")
    (tmp_path / "raise.jinja").write_text('{{ raise_exception("no system prompt") }}')
    (tmp_path / "undefined.jinja").write_text("{% for m in messages %}{{ m.content.nope.deeper }}{% endfor %}")
    (tmp_path / "latin1.jinja").write_bytes(b"\xff\xfe{{ x }}")
    (tmp_path / "latin1.yaml").write_bytes(b"model_name_or_path: \xff\n")
    (tmp_path / "not_a_model").mkdir()
    (tmp_path / "not_a_model" / "config.json").write_text("{}")
    lora = {"base_model_name_or_path": str(tiny_model), "peft_type": "LORA", "r": 4, "target_modules": ["q_proj"], "task_type": "CAUSAL_LM"}
    for name, config in (("adapter_bad_json", "{not json"), ("adapter_list", "[]"), ("adapter_no_weights", json.dumps(lora)),
                         ("adapter_bad_base", json.dumps({**lora, "base_model_name_or_path": str(tmp_path / "not_a_model")}))):  # fmt: skip
        (tmp_path / name).mkdir()
        (tmp_path / name / "adapter_config.json").write_text(config)
        if name == "adapter_bad_base":
            (tmp_path / name / "adapter_model.safetensors").write_bytes(b"")
    shutil.copytree(tiny_model, tmp_path / "no_tokenizer", ignore=shutil.ignore_patterns("tokenizer*"))
    shutil.copytree(tiny_model, tmp_path / "tokenizer_only", ignore=shutil.ignore_patterns("*.safetensors", "config.json"))
    (tmp_path / "a_file").write_text("x")
    config = {"dataset": "alpaca_demo", "dataset_dir": str(DATASET), "template": "chatml", "max_steps": 1, "cutoff_len": 64}
    (tmp_path / "no_tokenizer.yaml").write_text(json.dumps({**config, "model_name_or_path": str(tmp_path / "no_tokenizer"),
                                                            "output_dir": str(tmp_path / "out")}))  # fmt: skip
    (tmp_path / "output_is_a_file.yaml").write_text(json.dumps({**config, "model_name_or_path": str(tiny_model),
                                                                "output_dir": str(tmp_path / "a_file")}))  # fmt: skip
    return tmp_path


@pytest.mark.parametrize(("args", "code", "words"), [
    (["render", "{ds}", "--entry", "alpaca_demo", "--tokenizer", "{model}", "--template", "{t}/bad_syntax.jinja"], 2, "syntax error at line 1"),
    (["render", "{ds}", "--entry", "alpaca_demo", "--tokenizer", "{model}", "--template", "{t}/raise.jinja"], 1, "no system prompt"),
    (["render", "{ds}", "--entry", "sharegpt_demo", "--tokenizer", "{model}", "--template", "{t}/undefined.jinja"], 1, "has no attribute"),
    (["render", "{ds}", "--entry", "alpaca_demo", "--tokenizer", "{model}", "--template", "{t}/latin1.jinja"], 2, "not UTF-8"),
    (["render", "{ds}", "--entry", "alpaca_demo", "--tokenizer", "{ds}/alpaca_demo.json"], 2, "cannot load a tokenizer"),
    (["stats", "{ds}", "--entry", "alpaca_demo", "--tokenizer", "{t}/not_a_model"], 2, "holds no tokenizer files"),
    (["train", "{t}/latin1.yaml", "--dry-run"], 2, "not UTF-8"),
    (["export", "--adapter", "{t}/adapter_bad_json", "-o", "{t}/out"], 2, "not valid JSON"),
    (["export", "--adapter", "{t}/adapter_list", "-o", "{t}/out"], 2, "JSON object"),
    (["export", "--adapter", "{t}/adapter_no_weights", "-o", "{t}/out"], 2, "no adapter weights"),
    (["export", "--adapter", "{t}/adapter_bad_base", "-o", "{t}/out"], 2, "cannot load the base model"),
    (["infer", "{t}/not_a_model", "--dataset", "{ds}/alpaca_demo.json", "-o", "{t}/p.jsonl"], 2, "holds no tokenizer files"),
    (["infer", "{ds}", "--dataset", "{ds}/alpaca_demo.json", "-o", "{t}/p.jsonl"], 2, "holds no tokenizer files"),
    (["infer", "{t}/tokenizer_only", "--dataset", "{ds}/alpaca_demo.json", "-o", "{t}/p.jsonl"], 2, "cannot load the model"),
    (["train", "{t}/no_tokenizer.yaml"], 2, "holds no tokenizer files"),
    (["train", "{t}/output_is_a_file.yaml", "--dry-run"], 2, "is a file, not a folder"),
    (["infer", "{model}", "--dataset", "{ds}/alpaca_demo.json", "-o", "{t}/p.jsonl", "--device", "nonsense"], 2, "is not a device"),
])  # fmt: skip
def test_models_templates_and_configs_fmtkit_cannot_use_are_clear_errors(odd_models: Path, tiny_model: Path, capsys, args, code, words):
    pytest.importorskip("transformers")
    got, out, err = run_cli(capsys, *[a.format(ds=DATASET, model=tiny_model, t=odd_models) for a in args])
    assert (got, "Traceback" in err) == (code, False), out + err
    assert words in err
    assert not (odd_models / "out").exists() and not (odd_models / "p.jsonl").exists()


@pytest.mark.parametrize(("override", "words"), [
    ("val_size=.nan", "val_size must be"), ("val_size=0.9999", "leaves no training data"),
    ("lr_scheduler_type=nonsense", "lr_scheduler_type: 'nonsense' is not one of"), ("optim=adamw_torch_fast", "did you mean"),
    ("deepspeed=ds_z3.json", "deepspeed package is not installed"), ("lora_target=nomodule", "matches no module"),
])  # fmt: skip
def test_train_values_transformers_does_not_take_are_clear_errors(tmp_path: Path, tiny_model: Path, capsys, override: str, words: str):
    pytest.importorskip("trl")
    config = {"model_name_or_path": str(tiny_model), "dataset": "alpaca_demo", "dataset_dir": str(DATASET), "template": "chatml",
              "output_dir": str(tmp_path / "out"), "max_steps": 1, "cutoff_len": 64}  # fmt: skip
    (tmp_path / "train.yaml").write_text(json.dumps(config))
    dry = [] if override.startswith("lora_target") else ["--dry-run"]  # the model's modules are known once it loads
    code, out, err = run_cli(capsys, "train", tmp_path / "train.yaml", *dry, override)
    assert (code, "Traceback" in err) == (2, False), out + err
    assert words in err


@pytest.mark.parametrize("name", ["a,b", " a", "a ", "a\tb"])
def test_register_refuses_names_llamafactory_cannot_refer_to(ds: Path, capsys, name: str):
    before = (ds / "dataset_info.json").read_text()
    code, _, err = run_cli(capsys, "convert", ds, "--entry", "alpaca_demo", "--to", "sharegpt", "-o", ds / "o.jsonl", "--register", "--name", name)
    assert code == 2 and "LLaMA-Factory splits dataset names" in err, err
    assert (ds / "dataset_info.json").read_text() == before and not (ds / "o.jsonl").exists()


def test_chat_with_endless_input_stops_with_a_clear_message(tiny_model: Path):
    import os
    import subprocess
    import sys

    pytest.importorskip("transformers")
    with open("/dev/zero", "rb") as zero:
        proc = subprocess.run([sys.executable, "-m", "fmtkit", "chat", str(tiny_model), "--device", "cpu", "--max-new-tokens", "2"],
                              stdin=zero, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PYTHONPATH": str(DATASET.parent)})  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "longer than 1 MiB" in proc.stderr and "Traceback" not in proc.stderr
