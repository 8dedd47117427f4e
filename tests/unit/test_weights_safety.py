"""Weights are loaded from safetensors only (never unpickled), and dtype/device values are checked
with typed errors naming the value, the allowed values and the fix."""

from __future__ import annotations

import copy
import shutil

import pytest
import torch

from prmkit.errors import ConfigError, ModelLoadError


@pytest.fixture
def no_unpickling(monkeypatch):
    """Fail the test if anything calls torch.load."""

    def refuse(*args, **kwargs):
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", refuse)


@pytest.fixture(scope="module")
def pickled_model_dir(tmp_path_factory, tiny_lm, smol_tokenizer):
    """``tiny_lm`` saved with only ``pytorch_model.bin`` (a pickle)."""
    path = tmp_path_factory.mktemp("pickled-lm")
    tiny_lm.config.save_pretrained(path)
    smol_tokenizer.save_pretrained(path)
    torch.save(tiny_lm.state_dict(), path / "pytorch_model.bin")
    return path


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory, tiny_lm):
    """A LoRA adapter of ``tiny_lm`` (adapter_config.json + adapter_model.safetensors)."""
    from peft import LoraConfig, get_peft_model

    path = tmp_path_factory.mktemp("adapter")
    config = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"])
    get_peft_model(copy.deepcopy(tiny_lm), config).save_pretrained(path)
    assert (path / "adapter_model.safetensors").exists()
    return path


def test_base_folder_with_only_pickled_weights_is_refused_before_loading(
    pickled_model_dir, no_unpickling
):
    from prmkit.models import load_base
    from prmkit.policy.load import load_policy

    for load in (load_base, load_policy):
        with pytest.raises(ModelLoadError, match="never unpickles") as err:
            load(str(pickled_model_dir))
        assert "pytorch_model.bin" in str(err.value) and "safetensors" in str(err.value)


def test_training_base_with_only_pickled_weights_is_refused(pickled_model_dir, no_unpickling):
    from prmkit.prm import PRMSpec
    from prmkit.train.loop import build_prm

    with pytest.raises(ModelLoadError, match="never unpickles"):
        build_prm(PRMSpec.from_format("trl", head="probe"), str(pickled_model_dir))


def test_adapter_with_only_pickled_weights_is_refused(
    tiny_model_dir, adapter_dir, tmp_path, no_unpickling
):
    from safetensors.torch import load_file

    from prmkit.policy.load import load_policy

    pickled = tmp_path / "adapter"
    shutil.copytree(adapter_dir, pickled)
    state = load_file(str(pickled / "adapter_model.safetensors"))
    (pickled / "adapter_model.safetensors").unlink()
    with open(pickled / "adapter_model.bin", "wb") as handle:
        torch.save(state, handle)
    with pytest.raises(ModelLoadError, match="never unpickles") as err:
        load_policy(str(tiny_model_dir), adapter=pickled)
    assert "adapter_model.bin" in str(err.value)


def test_adapter_without_weights_is_refused(tiny_model_dir, adapter_dir, tmp_path):
    from prmkit.policy.load import load_policy

    empty = tmp_path / "adapter"
    empty.mkdir()
    shutil.copy(adapter_dir / "adapter_config.json", empty)
    with pytest.raises(ModelLoadError, match=r"adapter_model\.safetensors"):
        load_policy(str(tiny_model_dir), adapter=empty)


def test_safetensors_adapter_still_loads(tiny_model_dir, adapter_dir, no_unpickling):
    from prmkit.policy.load import load_policy

    policy = load_policy(str(tiny_model_dir), adapter=adapter_dir)
    assert not hasattr(policy.model, "peft_config")


@pytest.mark.parametrize("name", ["float33", "int8", "Float32", "", "device"])
def test_resolve_dtype_refuses_unknown_names(name):
    from prmkit.models.loading import resolve_dtype

    with pytest.raises(ConfigError) as err:
        resolve_dtype(name)
    assert repr(name) in str(err.value) and "bfloat16" in str(err.value)


def test_resolve_dtype_known_names():
    from prmkit.models.loading import resolve_dtype

    assert resolve_dtype("float32") is torch.float32
    assert resolve_dtype("bfloat16") is torch.bfloat16
    assert resolve_dtype("float16") is torch.float16


def test_resolve_device():
    from prmkit.models.loading import resolve_device

    assert resolve_device("cpu") == "cpu"
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for bad in ("gpu", f"cuda:{n + 7}", "cuda:x", "", "cpu:1:2"):
        with pytest.raises(ConfigError) as err:
            resolve_device(bad)
        assert repr(bad) in str(err.value) and "cpu" in str(err.value)
    if not n:
        with pytest.raises(ConfigError, match="no CUDA"):
            resolve_device("cuda")


def test_load_prm_checks_dtype_and_device(tiny_model_dir, tmp_path):
    from prmkit.prm import PRMSpec
    from prmkit.prm.checkpoint import load_prm, save_prm
    from prmkit.train.loop import build_prm

    prm = build_prm(PRMSpec.from_format("trl", head="probe", probe_hidden=4), str(tiny_model_dir))
    ckpt = save_prm(prm, tmp_path / "ckpt")
    with pytest.raises(ConfigError, match="float33"):
        load_prm(ckpt, dtype="float33")
    with pytest.raises(ConfigError, match="cuda:7"):
        load_prm(ckpt, device="cuda:7")
    with pytest.raises(ConfigError, match="float33"):
        from prmkit.models import load_base

        load_base(str(tiny_model_dir), dtype="float33")
