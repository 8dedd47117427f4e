"""One place that turns a backend name and a policy into a :class:`Generator`.

``generate``, ``annotate`` and their Ray workers build their policy here, so ``backend=openai``
means the same thing in every stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from prmkit.generate.protocol import Generator
from prmkit.models import PolicyConfig

__all__ = ["Backend", "make_generator"]

Backend = Literal["transformers", "openai"]
"""In-process transformers model, or an OpenAI-compatible server (vLLM, SGLang, serve-policy)."""


def make_generator(
    backend: Backend,
    policy: PolicyConfig,
    *,
    base_url: str = "http://localhost:8000/v1",
    batch_size: int = 32,
    system: str | None = None,
    chat: bool = True,
) -> Generator:
    """The policy as a :class:`Generator`.

    Args:
        backend: ``transformers`` (load ``policy`` in this process) or ``openai`` (the server at
            ``base_url`` serves ``policy.model``; a local model directory or ``smollm2`` also
            gives the tokenizer that renders prompts and counts tokens the same way).
        policy: Model, adapter, dtype, device and threads.
        base_url: The server's API root (``backend=openai``).
        batch_size: Rows decoded together (``backend=transformers``).
        system: System message (``None``: the chat template's default).
        chat: Render prompts with the model's chat template.
    """
    if backend == "openai":
        from prmkit.generate.openai_backend import OpenAIGenerator

        model = policy.model
        tokenizer = None
        if Path(model).expanduser().is_dir() or model == "smollm2":
            from prmkit.models import load_tokenizer

            tokenizer = load_tokenizer(model)
        return OpenAIGenerator(base_url, model, tokenizer=tokenizer, system=system, chat=chat)
    from prmkit.generate.transformers_backend import TransformersGenerator

    return TransformersGenerator.from_config(
        policy, batch_size=batch_size, system=system, chat=chat
    )
