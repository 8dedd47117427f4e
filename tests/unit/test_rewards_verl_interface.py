"""A copy of the veRL interface prmkit's veRL adapters are written against, and tests of the copy.

veRL cannot be installed in this environment, so prmkit's veRL tests run against this copy of the
parts of veRL **v0.9.0** they touch: ``verl-project/verl`` tag ``v0.9.0``, commit
``483b8a009ba3a97563edee3a19887e4862b8094a`` (version file ``0.9.0``). Copied:

* ``verl/experimental/reward_loop/reward_manager/base.py``: ``RewardManagerBase`` (verbatim but
  the logger): ``__init__(config, tokenizer, compute_score)``, ``init_class``, the abstract
  ``async run_single(data)``, and the class method ``assemble_rm_scores(data, scores)``.
* ``verl/utils/ray_utils.py``: ``get_event_loop`` (verbatim).
* ``verl/protocol.py``: of ``DataProto`` / ``DataProtoItem``, what the reward loop uses: ``len``,
  an int index gives a ``DataProtoItem`` (the row of every tensor, the element of every
  ``non_tensor_batch`` array), a slice gives a ``DataProto``. veRL's ``batch`` is a
  ``tensordict.TensorDict`` (not installed here): :class:`Batch` is a dict of tensors with a
  ``batch_size`` and TensorDict's int/slice indexing.
* ``verl/trainer/ppo/reward.py``: ``get_custom_reward_fn``'s kwargs merge (``_call_with_kwargs``
  and ``_call_with_kwargs_async``, verbatim) and ``load_reward_manager``'s constructor call.
* ``verl/experimental/reward_loop/reward_loop.py``: ``RewardLoopWorker.compute_score_batch``
  (one asyncio task per sample) and ``RewardLoopManager.compute_rm_score`` (``reward_score`` of
  every sample through ``assemble_rm_scores`` into ``rm_scores``), without Ray and with one
  worker: :func:`compute_rm_score`.
* ``verl/experimental/agent_loop/agent_loop.py`` (lines 1086-1092): the streaming path's
  placement of one scalar per response at its last valid token: :func:`streaming_rm_scores`.

:func:`installed_verl` puts the copy into ``sys.modules`` under veRL's module names, so
``prmkit.rewards.verl_manager`` imports it exactly as it imports veRL.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import sys
import types
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch

VERL_VERSION = "0.9.0"
VERL_COMMIT = "483b8a009ba3a97563edee3a19887e4862b8094a"


# -------------------------------------------------------------------------------- verl/protocol.py


class Batch(dict):
    """TensorDict's indexing, as the reward loop uses it: ``batch[key]``, ``batch[i]`` (a row of
    every tensor), ``batch[a:b]``, and ``batch_size``."""

    def __init__(self, tensors: dict[str, torch.Tensor], batch_size: tuple[int, ...]) -> None:
        super().__init__(tensors)
        self.batch_size = torch.Size(batch_size)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return dict.__getitem__(self, key)
        if isinstance(key, int):
            return Batch({k: v[key] for k, v in self.items()}, ())
        if isinstance(key, slice):
            rows = {k: v[key] for k, v in self.items()}
            return Batch(rows, (next(iter(rows.values())).shape[0],))
        raise TypeError(f"Indexing with {type(key)} is not supported")


@dataclass
class DataProtoItem:
    batch: Batch = None
    non_tensor_batch: dict = field(default_factory=dict)
    meta_info: dict = field(default_factory=dict)


@dataclass
class DataProto:
    batch: Batch = None
    non_tensor_batch: dict = field(default_factory=dict)
    meta_info: dict = field(default_factory=dict)

    def __len__(self):
        if self.batch is not None:
            return self.batch.batch_size[0]
        elif self.non_tensor_batch is not None and len(self.non_tensor_batch) > 0:
            random_key = list(self.non_tensor_batch.keys())[0]  # noqa: RUF015 (verbatim)
            return self.non_tensor_batch[random_key].shape[0]
        else:
            return 0

    def __getitem__(self, item):
        if isinstance(item, slice):
            return self.slice(item.start, item.stop, item.step)
        elif isinstance(item, int | np.integer):
            tensor_data = self.batch[item] if self.batch is not None else None
            non_tensor_data = {key: val[item] for key, val in self.non_tensor_batch.items()}
            return DataProtoItem(
                batch=tensor_data, non_tensor_batch=non_tensor_data, meta_info=self.meta_info
            )
        else:
            raise TypeError(f"Indexing with {type(item)} is not supported")

    def slice(self, start=None, end=None, step=None):
        slice_obj = slice(start, end, step)
        sliced_batch = self.batch[slice_obj] if self.batch is not None else None
        sliced_non_tensor = {key: val[slice_obj] for key, val in self.non_tensor_batch.items()}
        return type(self)(
            batch=sliced_batch, non_tensor_batch=sliced_non_tensor, meta_info=self.meta_info
        )


# ------------------------------------------------------------------------- verl/utils/ray_utils.py


def get_event_loop():
    try:
        loop = asyncio.get_event_loop()
    except RuntimeError:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)

    return loop


# -------------------------------------------- verl/experimental/reward_loop/reward_manager/base.py
# Copyright 2024 Bytedance Ltd. and/or its affiliates. Licensed under the Apache License 2.0.

RawRewardFn = Callable[..., Any] | None


class RewardManagerBase(ABC):
    _class_initialized = False

    def __init__(self, config, tokenizer, compute_score: RawRewardFn):
        """Initialize reward manager.

        Args:
            config (DictConfig): YAML config.
            tokenizer (AutoTokenizer): Tokenizer for tokenize messages.
        """
        self.config = config
        self.tokenizer = tokenizer
        self.compute_score = compute_score
        self.loop = get_event_loop()
        self.init_class(config, tokenizer)

    @classmethod
    def init_class(cls, config, tokenizer):
        """Initialize class state shared across all instances."""
        if cls._class_initialized:
            return
        cls._class_initialized = True

    @abstractmethod
    async def run_single(self, data: DataProto):
        raise NotImplementedError

    @classmethod
    def assemble_rm_scores(cls, data: DataProto, scores: list[float]) -> torch.Tensor:
        """Assemble per-sample reward scores into the ``rm_scores`` tensor for a batch."""
        prompt_length = data.batch["prompts"].size(1)
        valid_response_length = data.batch["attention_mask"][:, prompt_length:].sum(dim=1)
        rm_scores = torch.zeros_like(data.batch["responses"], dtype=torch.float32)
        rm_scores[
            torch.arange(rm_scores.size(0), device=rm_scores.device), valid_response_length - 1
        ] = rm_scores.new_tensor(scores)
        return rm_scores


# ---------------------------------------------------------------------- verl/trainer/ppo/reward.py


def _call_with_kwargs(raw_fn, extra_kwargs, *args, **kwargs):
    merged_kwargs = {**kwargs, **extra_kwargs}
    return raw_fn(*args, **merged_kwargs)


async def _call_with_kwargs_async(raw_fn, extra_kwargs, *args, **kwargs):
    merged_kwargs = {**kwargs, **extra_kwargs}
    return await raw_fn(*args, **merged_kwargs)


def custom_reward_fn(raw_fn: Callable, reward_kwargs: dict) -> Callable:
    """``get_custom_reward_fn`` after ``load_extern_object``: the kwargs merge."""
    import functools

    if not inspect.iscoroutinefunction(raw_fn):
        return functools.partial(_call_with_kwargs, raw_fn, reward_kwargs)
    return functools.partial(_call_with_kwargs_async, raw_fn, reward_kwargs)


def load_reward_manager(
    reward_manager_cls: type, config: Any, tokenizer: Any, compute_score: Any, **reward_kwargs
):
    """``load_reward_manager``'s instantiation (the class already resolved)."""
    return reward_manager_cls(
        config=config, tokenizer=tokenizer, compute_score=compute_score, **reward_kwargs
    )


# ---------------------------------------------------- verl/experimental/reward_loop/reward_loop.py


async def compute_score_batch(reward_manager: Any, data: DataProto) -> list[dict]:
    """``RewardLoopWorker.compute_score_batch`` with a custom reward function set."""
    tasks = []
    for i in range(len(data)):
        tasks.append(asyncio.create_task(reward_manager.run_single(data[i : i + 1])))
    outputs = await asyncio.gather(*tasks)
    return outputs


def compute_rm_score(reward_manager: Any, data: DataProto) -> DataProto:
    """``RewardLoopManager.compute_rm_score`` with one worker, without Ray."""
    outputs_flat = asyncio.run(compute_score_batch(reward_manager, data))
    scores = [item["reward_score"] for item in outputs_flat]
    rm_scores = type(reward_manager).assemble_rm_scores(data, scores)
    batch = Batch({"rm_scores": rm_scores}, (len(data),))
    reward_extra_infos = [output.get("reward_extra_info", {}) for output in outputs_flat]
    reward_extra_keys = list(reward_extra_infos[0].keys())
    non_tensor_batch = {}
    for key in reward_extra_keys:
        non_tensor_batch[key] = np.array([info[key] for info in reward_extra_infos])
    return DataProto(
        batch=batch,
        non_tensor_batch=non_tensor_batch,
        meta_info={"reward_extra_keys": reward_extra_keys},
    )


# ------------------------------------------------------ verl/experimental/agent_loop/agent_loop.py


def streaming_rm_scores(data: DataProto, scores: list) -> torch.Tensor:
    """The agent loop's ``rm_scores`` from streamed ``reward_score`` values (one per sample)."""
    prompt_ids = data.batch["prompts"]
    attention_mask = data.batch["attention_mask"]
    response_mask = data.batch["attention_mask"][:, prompt_ids.size(1) :]
    prompt_length = prompt_ids.size(1)
    response_length = attention_mask[:, prompt_length:].sum(dim=1) - 1
    rm_scores = torch.zeros_like(response_mask, dtype=torch.float32)
    rm_scores[torch.arange(response_mask.size(0)), response_length] = torch.tensor(
        scores, dtype=torch.float32
    )
    return rm_scores


# --------------------------------------------------------------------------- the fake package


@contextlib.contextmanager
def installed_verl() -> Iterator[None]:
    """This copy as ``verl`` in ``sys.modules`` (and ``prmkit.rewards.verl_manager`` imported
    fresh against it); both are removed afterwards."""
    names = {
        "verl": {"DataProto": DataProto, "__version__": VERL_VERSION},
        "verl.protocol": {"DataProto": DataProto, "DataProtoItem": DataProtoItem},
        "verl.utils": {},
        "verl.utils.ray_utils": {"get_event_loop": get_event_loop},
        "verl.experimental": {},
        "verl.experimental.reward_loop": {},
        "verl.experimental.reward_loop.reward_manager": {},
        "verl.experimental.reward_loop.reward_manager.base": {
            "RewardManagerBase": RewardManagerBase,
            "RawRewardFn": RawRewardFn,
        },
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, attrs in names.items():
            module = types.ModuleType(name)
            module.__dict__.update(attrs)
            mp.setitem(sys.modules, name, module)
        mp.delitem(sys.modules, "prmkit.rewards.verl_manager", raising=False)
        yield
        sys.modules.pop("prmkit.rewards.verl_manager", None)


def make_batch(
    prompts: list[list[int]], responses: list[list[int]], pad_id: int, **non_tensor: list
) -> DataProto:
    """A rollout batch laid out as veRL's: prompts left-padded, responses right-padded,
    ``attention_mask`` over both; ``non_tensor_batch`` as numpy object arrays."""
    p_len = max(len(p) for p in prompts)
    r_len = max(len(r) for r in responses)
    n = len(prompts)
    prompt_t = torch.full((n, p_len), pad_id)
    resp_t = torch.full((n, r_len), pad_id)
    mask = torch.zeros((n, p_len + r_len), dtype=torch.long)
    for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
        prompt_t[i, p_len - len(p) :] = torch.tensor(p)
        resp_t[i, : len(r)] = torch.tensor(r)
        mask[i, p_len - len(p) : p_len + len(r)] = 1
    batch = Batch(
        {
            "prompts": prompt_t,
            "responses": resp_t,
            "input_ids": torch.cat([prompt_t, resp_t], dim=1),
            "attention_mask": mask,
        },
        (n,),
    )
    arrays = {}
    for key, values in non_tensor.items():
        arrays[key] = np.empty(n, dtype=object)
        arrays[key][:] = values
    return DataProto(batch=batch, non_tensor_batch=arrays)


# --------------------------------------------------------------------------- tests of the copy


class _Constant(RewardManagerBase):
    async def run_single(self, data: DataProto) -> dict:
        return {"reward_score": float(len(data)), "reward_extra_info": {"acc": 1.0}}


def test_the_copy_indexes_like_verl():
    data = make_batch([[1, 2], [3]], [[4, 5, 6], [7]], 0, data_source=["a", "b"])
    assert len(data) == 2 and len(data[1:]) == 1 and len(data[-1:]) == 1
    item = data[1]
    assert isinstance(item, DataProtoItem)
    assert item.batch["responses"].tolist() == [7, 0, 0]
    assert item.non_tensor_batch["data_source"] == "b"
    assert data.batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [0, 1, 1, 0, 0]]


def test_default_assembly_puts_one_scalar_at_the_last_valid_token():
    """veRL's own placement: scalar rewards at valid_response_length - 1 (both paths)."""
    data = make_batch([[1, 2], [3]], [[4, 5, 6], [7]], 0)

    async def build():
        return _Constant({}, None, None)

    manager = asyncio.run(build())
    out = compute_rm_score(manager, data)
    assert out.batch["rm_scores"].tolist() == [[0, 0, 1], [1, 0, 0]]
    assert out.non_tensor_batch["acc"].tolist() == [1.0, 1.0]
    assert streaming_rm_scores(data, [2.0, 3.0]).tolist() == [[0, 0, 2], [3, 0, 0]]
