"""PRM checkpoints: safetensors weights + ``prm_spec.json`` + tokenizer. Loading never unpickles.

Layout of a checkpoint directory::

    prm_spec.json            the PRMSpec
    config.json, model.safetensors, tokenizer files   the backbone (save_pretrained)
    probe.safetensors        probe head only
    ref/                     implicit head only: the frozen reference model

:func:`save_prm` writes only into a new or empty folder, or over an existing checkpoint (a folder
with ``prm_spec.json``) when ``overwrite=True``; it never deletes a folder of other files. A
replacement is written beside the target as ``.NAME.PID-XXXXXXXX.new``, the old checkpoint is
renamed aside to ``.NAME.PID-XXXXXXXX.old``, the new one renamed in, then the old one deleted. A
kill at any point leaves a loadable checkpoint: the old or the new one at ``NAME``; if the kill
fell between the two renames, ``NAME`` is missing and the old checkpoint sits in the ``.old``
folder, which the next :func:`load_prm` or :func:`save_prm` of ``NAME`` renames back. Leftover
``.new``/``.old`` folders of a killed save are removed by the next save of ``NAME`` once their
process is gone and they are older than :data:`prmkit.io.STALE_SECONDS`.

Example:
    >>> prm = load_prm("runs/prm-tokcls")  # doctest: +SKIP
    >>> prm.spec.head  # doctest: +SKIP
    'tokcls'
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from prmkit.errors import ConfigError, ModelLoadError
from prmkit.io import make_sibling_dir, remove_stale_siblings, replace_dir, stale_siblings
from prmkit.models.loading import check_safetensors, resolve_device, resolve_dtype
from prmkit.models.precision import default_attention
from prmkit.prm.heads import PRM, make_probe, truncate_for_probe
from prmkit.prm.spec import SPEC_FILE, PRMSpec, load_spec, save_spec

__all__ = ["check_checkpoint_target", "load_prm", "save_prm"]

PROBE_FILE = "probe.safetensors"


def _unwrap(model: Any) -> Any:
    """Merge a peft adapter into its base weights, so the checkpoint is a plain HF model."""
    if hasattr(model, "merge_and_unload"):
        return model.merge_and_unload()
    return model


def _restore_aside(directory: Path) -> None:
    """If a killed save left ``directory`` missing and the old checkpoint aside, rename it back."""
    if directory.exists() or directory.is_symlink():
        return
    for aside in stale_siblings(directory, "old", min_age=0):
        if (aside / SPEC_FILE).is_file():
            with contextlib.suppress(OSError):  # another process restored it first
                os.replace(aside, directory)
            return


def check_checkpoint_target(directory: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Refuse a checkpoint target that holds anything but a checkpoint we may replace.

    Call it before training, so a bad ``--out`` fails in seconds; :func:`save_prm` calls it too.
    Also restores a checkpoint a killed save left aside (see the module docstring).

    Args:
        directory: The checkpoint folder to write.
        overwrite: Allow replacing an existing checkpoint (a folder with ``prm_spec.json``).

    Returns:
        The absolute target path.

    Raises:
        ConfigError: the target is a file, a non-empty folder that is not a prmkit checkpoint,
            or a checkpoint while ``overwrite`` is false.
    """
    directory = Path(directory).absolute()
    _restore_aside(directory)
    if directory.exists() and not directory.is_dir():
        raise ConfigError(
            "the checkpoint path is a file",
            got=str(directory),
            expected="a new or empty folder, or an existing prmkit checkpoint",
            fix="choose another output folder",
        )
    if not directory.is_dir() or not any(directory.iterdir()):
        return directory
    if not (directory / SPEC_FILE).is_file():
        raise ConfigError(
            f"the output folder is not empty and is not a prmkit checkpoint (no {SPEC_FILE}); "
            "nothing was deleted",
            got=str(directory),
            expected="a new or empty folder, or an existing prmkit checkpoint",
            fix="choose a new output folder (prmkit never replaces a folder it did not write)",
        )
    if not overwrite:
        raise ConfigError(
            "the output folder already holds a prmkit checkpoint",
            got=str(directory),
            expected="a new or empty folder, or overwrite=true to replace the checkpoint",
            fix="pass overwrite=true (the whole folder is replaced) or choose another folder",
        )
    return directory


def save_prm(prm: PRM, directory: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write a self-contained checkpoint atomically (into a folder beside it, then renamed).

    LoRA adapters are merged into the weights first.

    Args:
        prm: The PRM to save.
        directory: The checkpoint folder: new, empty, or (with ``overwrite``) a checkpoint.
        overwrite: Replace an existing checkpoint there.

    Raises:
        ConfigError: see :func:`check_checkpoint_target`.
    """
    from safetensors.torch import save_file

    directory = check_checkpoint_target(directory, overwrite=overwrite)
    directory.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(directory, "new")
    if directory.exists():
        remove_stale_siblings(directory, "old")
    tmp = make_sibling_dir(directory, "new")
    try:
        model = _unwrap(prm.model)
        model.save_pretrained(tmp, safe_serialization=True)
        prm.tokenizer.save_pretrained(tmp)
        if prm.probe is not None:
            state = {k: v.detach().cpu().contiguous() for k, v in prm.probe.state_dict().items()}
            save_file(state, str(tmp / PROBE_FILE))
        if prm.ref_model is not None:
            prm.ref_model.save_pretrained(tmp / "ref", safe_serialization=True)
        save_spec(prm.spec, tmp)
        replace_dir(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def _load_hf(
    cls: Any,
    path: Path,
    dtype: Any,
    device: str,
    trust_remote_code: bool,
    attn_implementation: str | None = None,
) -> Any:
    check_safetensors(path)
    extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
    try:
        model = cls.from_pretrained(
            str(path),
            dtype=dtype,
            use_safetensors=True,
            trust_remote_code=trust_remote_code,
            **extra,
        )
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"cannot load model weights ({exc})",
            got=str(path),
            expected="a Hugging Face model directory with safetensors",
            fix="check the checkpoint directory",
        ) from None
    return model.to(device).eval()


def check_checkpoint_dir(path: str | os.PathLike[str]) -> None:
    """Raise :class:`ModelLoadError` unless ``path`` holds a model's ``config.json``."""
    if not (Path(path) / "config.json").exists():
        raise ModelLoadError(
            "not a checkpoint directory",
            got=str(path),
            expected="a directory with config.json and prm_spec.json",
            fix="pass the output directory of `prmkit train`",
        )


def load_prm(
    directory: str | os.PathLike[str],
    *,
    device: str = "cpu",
    dtype: str = "float32",
    trust_remote_code: bool = False,
    spec: PRMSpec | None = None,
    attn_implementation: str = "auto",
) -> PRM:
    """Load a PRM checkpoint (or any local HF model directory given a ``spec``).

    Args:
        directory: Checkpoint directory (with ``prm_spec.json`` unless ``spec`` is given).
        device: Torch device.
        dtype: Torch dtype name; ``auto`` = bfloat16 where the device computes it natively.
        trust_remote_code: Explicit opt-in for models whose config names custom code
            (e.g. a local Qwen2.5-Math-PRM directory). Off by default.
        spec: Use this spec instead of the directory's ``prm_spec.json``.
        attn_implementation: transformers' attention kernel; ``auto`` =
            :func:`prmkit.models.precision.default_attention` (flash-attention 2 on CUDA when
            installed, for varlen attention over packed rows; SDPA otherwise).

    Raises:
        ModelLoadError: missing spec or weights, pickled weights only, or remote code needed
            without the opt-in.
        ConfigError: an unknown ``dtype`` or a ``device`` this machine lacks
            (see :func:`prmkit.models.loading.resolve_dtype`, ``resolve_device``).
    """
    from transformers import (
        AutoModel,
        AutoModelForCausalLM,
        AutoModelForTokenClassification,
        AutoTokenizer,
    )

    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    path = Path(directory)
    _restore_aside(path.absolute())
    check_checkpoint_dir(path)
    spec = spec or load_spec(path)
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    remote = "auto_map" in config
    if remote and not trust_remote_code:
        raise ModelLoadError(
            "the model needs its own code (config.json has auto_map)",
            got=str(path),
            expected="trust_remote_code=True",
            fix="read the model's code, then pass --trust-remote-code",
        )
    if spec.head == "tokcls":
        cls = AutoModel if remote else AutoModelForTokenClassification
    else:
        cls = AutoModelForCausalLM
    attn = default_attention(device) if attn_implementation == "auto" else attn_implementation
    model = _load_hf(cls, path, torch_dtype, device, trust_remote_code, attn)
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    probe = ref = None
    if spec.head == "probe":
        from safetensors.torch import load_file

        if not (path / PROBE_FILE).exists():
            raise ModelLoadError(
                "probe checkpoint lacks its head",
                got=str(path),
                expected=PROBE_FILE,
                fix="re-save the checkpoint",
            )
        state = load_file(str(path / PROBE_FILE))
        if "logprobs" not in spec.probe_features:
            spec = spec.replace(probe_layer=truncate_for_probe(model, spec.probe_layer))
        probe = make_probe(spec, model.config.hidden_size)
        probe.load_state_dict(state)
        probe.to(device).eval()
    if spec.head == "implicit":
        if not (path / "ref" / "config.json").exists():
            raise ModelLoadError(
                "implicit PRM checkpoint lacks its reference model",
                got=str(path),
                expected="a ref/ model directory",
                fix="re-save the checkpoint with the reference model",
            )
        ref = _load_hf(AutoModelForCausalLM, path / "ref", torch_dtype, device, False, attn)
    return PRM(
        spec=spec, tokenizer=tokenizer, model=model, probe=probe, ref_model=ref, source=str(path)
    )
