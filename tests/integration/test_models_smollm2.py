"""The packaged SmolLM2: the cached safetensors copy against transformers' own GGUF loader."""

from __future__ import annotations

import pytest
import torch

from prmkit.models import find_packaged_gguf, load_base

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_cached_smollm2_equals_direct_gguf_load(tmp_path, monkeypatch):
    """The cached safetensors copy must compute exactly what transformers' GGUF loader gives.

    A fresh cache folder makes prmkit convert the GGUF here, with its parse-once memo.
    """
    import gguf as gguf_module
    from transformers import AutoModelForCausalLM

    monkeypatch.setenv("PRMKIT_CACHE_DIR", str(tmp_path))
    reader = gguf_module.GGUFReader
    base = load_base("smollm2")
    assert any((tmp_path / "models").iterdir())  # converted here, not read from another cache
    assert gguf_module.GGUFReader is reader  # the memo is undone after the conversion
    gguf = find_packaged_gguf()
    direct = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name).eval()
    ids = base.tokenizer("Step 1: 12 + 5 = 17", return_tensors="pt").input_ids
    with torch.inference_mode():
        assert torch.equal(base.model(ids).logits, direct(ids).logits)
    assert base.model.config.num_hidden_layers == 30
    assert "<|im_start|>" in base.tokenizer.chat_template
