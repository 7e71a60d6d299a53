"""Models: download them, load them (with an optional LoRA adapter), generate with them.

Each module imports its heavy dependencies (huggingface_hub, torch,
transformers, peft) inside its functions, so importing :mod:`fmtkit.models`
costs nothing.

- :mod:`fmtkit.models.download`: :func:`~fmtkit.models.download.download_model`
  fetches a model repository from a Hugging Face compatible hub or mirror
  (resumable), or from ModelScope.
- :mod:`fmtkit.models.loading`: :func:`~fmtkit.models.loading.load_model`
  loads a base model and tokenizer, and a peft adapter on top.
- :mod:`fmtkit.models.generate`: prompts from samples, batched and streamed
  generation through the tokenizer's chat template.
- :mod:`fmtkit.models.chat`: :class:`~fmtkit.models.chat.ChatSession`, a
  conversation that keeps its history.
- :mod:`fmtkit.models.infer`: :func:`~fmtkit.models.infer.infer_dataset`,
  answers for every prompt of a dataset, written as JSON Lines.
- :mod:`fmtkit.models.vision`: vision-language models: their processor
  (:func:`~fmtkit.models.vision.load_processor`, images without torchvision
  too), messages with images, and ``fmtkit render``'s view with image tokens.
"""
