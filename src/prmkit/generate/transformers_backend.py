"""The in-process policy: a Hugging Face causal LM behind the :class:`Generator` protocol.

How a call runs:

1. Each prefix is tokenized once (:func:`prmkit.generate.chat.encode_prefix`).
2. The ``len(prefixes) * n`` samples are cut into chunks of ``batch_size`` rows (bounded memory).
3. For a chunk, every prefix it needs is encoded once (prefill, left-padded batches of
   ``prefill_batch_size``); its KV cache and last logits are kept while later chunks still need
   them. The chunk's cache is those prefix caches repeated along the batch dimension, right-aligned
   with left padding and an attention mask - the shared prefix never runs through the model again.
4. A decode loop feeds one token per row (a ``DynamicCache`` whose layers write into buffers
   preallocated for ``max_new_tokens``, explicit positions), samples with one
   random stream per sample (:mod:`prmkit.generate.sampling`), and drops finished rows from the
   batch. ``stop="step"`` ends a row when its decoded text holds a step boundary (which may sit
   inside a larger token such as ``" \\n\\n"``); the text is cut exactly at the boundary.

Token accounting: ``prompt_tokens`` is the length of the prefix ids; ``completion_tokens`` counts
every sampled token, including the end-of-solution token and the token that completed a step
boundary (those tokens cost a forward pass each).

Example:
    >>> gen = TransformersGenerator.from_pretrained("smollm2")  # doctest: +SKIP
    >>> out = gen.continue_from([Prefix("What is 2+3?")], n=4, params=SamplingParams(),
    ...                         stop="step")  # doctest: +SKIP
    >>> out[0][0].text, out[0][0].completion_tokens  # doctest: +SKIP
    ('2 + 3 = 5.', 9)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from prmkit.errors import ModelLoadError
from prmkit.generate.chat import encode_prefix, find_step_end
from prmkit.generate.protocol import Completion, Prefix, SamplingParams, StopAt
from prmkit.generate.sampling import check_params, draw_uniforms, row_seed, sample_next

if TYPE_CHECKING:
    from prmkit.models.policy_config import PolicyConfig

__all__ = ["Generated", "TransformersGenerator"]


@dataclass
class Generated:
    """One sample at the token level (what :class:`Completion` is built from).

    Attributes:
        token_ids: Every sampled token (including an end token or the boundary token).
        text: The completion text (no end token; cut at the step boundary for ``"stop"``).
        finish_reason: ``"stop"``, ``"eos"`` or ``"length"``.
        prompt_tokens: Length of the prefix ids.
        seed: The call's base seed (the sample's own stream is ``row_seed(seed, i, j)``).
    """

    token_ids: list[int]
    text: str
    finish_reason: Literal["stop", "eos", "length"]
    prompt_tokens: int
    seed: int


class _Row:
    """Decode state of one sample inside a chunk."""

    __slots__ = ("done", "finish", "prefix", "sample", "text", "tokens", "unit")

    def __init__(self, prefix: int, sample: int, unit: int) -> None:
        self.prefix, self.sample, self.unit = prefix, sample, unit
        self.tokens: list[int] = []
        self.text = ""
        self.finish: Literal["stop", "eos", "length"] = "length"
        self.done = False


class TransformersGenerator:
    """A :class:`~prmkit.generate.protocol.Generator` over an in-process causal LM.

    Args:
        model: A Hugging Face causal LM (Llama-family or any model with a full-attention
            ``DynamicCache``), in eval mode.
        tokenizer: Its tokenizer.
        batch_size: Rows decoded together; bounds memory for large ``n``.
        prefill_batch_size: Prefixes encoded together in one forward pass.
        share_prefix: Encode each prefix once and reuse its KV cache for all its samples. With
            ``False`` every sample re-encodes its prefix (the naive path, kept for comparison).
        chat: Render prompts with the tokenizer's chat template.
        system: System message for the chat template (``None``: the template's default).
        eos_token_ids: Tokens that end a solution (default: the tokenizer's and the model's
            generation config EOS tokens).
        preallocate: Decode into preallocated KV buffers (``max_new_tokens`` long) instead of
            ``DynamicCache``'s concatenation, which copies the whole cache at every token.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        batch_size: int = 32,
        prefill_batch_size: int = 8,
        share_prefix: bool = True,
        chat: bool = True,
        system: str | None = None,
        eos_token_ids: Sequence[int] | None = None,
        preallocate: bool = True,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.prefill_batch_size = prefill_batch_size
        self.share_prefix = share_prefix
        self.chat = chat
        self.system = system
        self.eos_token_ids = frozenset(
            eos_token_ids if eos_token_ids is not None else _default_eos(model, tokenizer)
        )
        self._newline_ids: frozenset[int] | None = None
        self.preallocate = preallocate

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str = "smollm2",
        *,
        adapter: str | Path | None = None,
        dtype: str = "float32",
        device: str = "cpu",
        **kwargs: Any,
    ) -> TransformersGenerator:
        """Load the packaged SmolLM2 or a local model, optionally with a LoRA adapter merged in.

        Raises:
            ModelLoadError: the model or the adapter cannot be found.
        """
        from prmkit.models.policy import load_policy

        policy = load_policy(name_or_path, adapter, dtype=dtype, device=device)
        return cls(policy.model, policy.tokenizer, **kwargs)

    @classmethod
    def from_config(cls, policy: PolicyConfig, **kwargs: Any) -> TransformersGenerator:
        """The generator a stage config's ``policy`` group names (threads set first).

        Example:
            >>> gen = TransformersGenerator.from_config(PolicyConfig(), batch_size=16)  # doctest: +SKIP

        Raises:
            ModelLoadError: the model or the adapter cannot be found.
        """
        if policy.threads:
            import torch

            torch.set_num_threads(policy.threads)
        return cls.from_pretrained(
            policy.model, adapter=policy.adapter, dtype=policy.dtype, device=policy.device, **kwargs
        )

    # -- the Generator protocol ------------------------------------------------------------

    def sample(
        self, prompts: Sequence[str], n: int, params: SamplingParams
    ) -> list[list[Completion]]:
        """``n`` whole solutions per prompt (``out[i][j]``: sample j of prompt i)."""
        return self.continue_from([Prefix(p) for p in prompts], n, params, stop="solution")

    def continue_from(
        self, prefixes: Sequence[Prefix], n: int, params: SamplingParams, stop: StopAt = "solution"
    ) -> list[list[Completion]]:
        """``n`` continuations per prefix, ending at the next step boundary or the solution end."""
        ids = [self.encode(p) for p in prefixes]
        out = self.generate_ids(ids, n, params, stop=stop)
        return [
            [
                Completion(
                    text=g.text,
                    prompt_tokens=g.prompt_tokens,
                    completion_tokens=len(g.token_ids),
                    finish_reason=g.finish_reason,
                    meta={"seed": g.seed, "sample_index": j},
                )
                for j, g in enumerate(group)
            ]
            for group in out
        ]

    # -- token level -----------------------------------------------------------------------

    def encode(self, prefix: Prefix) -> list[int]:
        """The model input ids of a prefix (chat template, steps, trailing separator)."""
        return encode_prefix(self.tokenizer, prefix, system=self.system, chat=self.chat)

    def generate_ids(
        self,
        prompt_ids: Sequence[Sequence[int]],
        n: int,
        params: SamplingParams,
        stop: StopAt = "solution",
    ) -> list[list[Generated]]:
        """Sample ``n`` continuations of each token sequence; ``out[i][j]`` is sample j of i."""
        import torch

        check_params(params, n)
        seed = params.seed if params.seed is not None else int(torch.randint(0, 2**62, (1,)))
        rows = [(i, j) for i in range(len(prompt_ids)) for j in range(n)]
        out: list[list[Generated]] = [[] for _ in prompt_ids]
        store: dict[int, tuple[list[tuple[Any, Any]], Any]] = {}
        with torch.inference_mode():
            for start in range(0, len(rows), self.batch_size):
                chunk = [
                    _Row(i, j, i if self.share_prefix else i * n + j)
                    for i, j in rows[start : start + self.batch_size]
                ]
                for unit in [u for u in store if u < chunk[0].unit]:
                    del store[unit]  # no later chunk needs this prefix
                self._prefill(prompt_ids, n, [r.unit for r in chunk], store)
                self._decode(chunk, store, prompt_ids, n, params, stop, seed)
                for row in chunk:
                    out[row.prefix].append(
                        Generated(
                            token_ids=row.tokens,
                            text=row.text,
                            finish_reason=row.finish,
                            prompt_tokens=len(prompt_ids[row.prefix]),
                            seed=seed,
                        )
                    )
        return out

    def _unit_ids(self, prompt_ids: Sequence[Sequence[int]], n: int, unit: int) -> Sequence[int]:
        return prompt_ids[unit if self.share_prefix else unit // n]

    def _prefill(
        self,
        prompt_ids: Sequence[Sequence[int]],
        n: int,
        units: list[int],
        store: dict[int, tuple[list[tuple[Any, Any]], Any]],
    ) -> None:
        """Encode the prefixes (units) not in ``store`` yet; keep each one's KV and last logits."""
        import torch
        from transformers import DynamicCache

        todo = list(dict.fromkeys(u for u in units if u not in store))
        for start in range(0, len(todo), self.prefill_batch_size):
            group = todo[start : start + self.prefill_batch_size]
            seqs = [list(self._unit_ids(prompt_ids, n, u)) for u in group]
            width = max(len(s) for s in seqs)
            pad = self.tokenizer.pad_token_id or 0
            ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs])  # (group, width)
            mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs])
            positions = (mask.cumsum(-1) - 1).clamp_(min=0)
            cache = DynamicCache(config=self.model.config)
            result = self.model(
                input_ids=ids.to(self.model.device),
                attention_mask=mask.to(self.model.device),
                position_ids=positions.to(self.model.device),
                cache=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            _check_cache(cache)
            logits = result.logits[:, -1, :].float()  # (group, vocab)
            for b, (unit, seq) in enumerate(zip(group, seqs, strict=True)):
                kv = [
                    (
                        layer.keys[b : b + 1, :, width - len(seq) :].clone(),
                        layer.values[b : b + 1, :, width - len(seq) :].clone(),
                    )
                    for layer in cache.layers
                ]  # each (1, kv_heads, len, head_dim)
                store[unit] = (kv, logits[b].clone())

    def _decode(
        self,
        chunk: list[_Row],
        store: dict[int, tuple[list[tuple[Any, Any]], Any]],
        prompt_ids: Sequence[Sequence[int]],
        n: int,
        params: SamplingParams,
        stop: StopAt,
        seed: int,
    ) -> None:
        """Run the decode loop for one chunk, filling each row's tokens, text and finish."""
        import torch
        from transformers import DynamicCache

        device = self.model.device
        lengths = [len(self._unit_ids(prompt_ids, n, r.unit)) for r in chunk]
        width = max(lengths)
        by_unit: dict[int, list[int]] = {}
        for k, row in enumerate(chunk):
            by_unit.setdefault(row.unit, []).append(k)
        layers = []
        for layer in range(len(store[chunk[0].unit][0])):
            keys = values = None
            for unit, members in by_unit.items():
                k_u, v_u = store[unit][0][layer]  # (1, kv_heads, len, head_dim)
                if keys is None:
                    shape = (len(chunk), k_u.shape[1], width, k_u.shape[3])
                    keys = k_u.new_zeros(shape)
                    values = v_u.new_zeros(shape)
                index = torch.tensor(members, device=k_u.device)
                keys[index, :, width - k_u.shape[2] :] = k_u
                values[index, :, width - v_u.shape[2] :] = v_u
            layers.append((keys, values))  # (rows, kv_heads, width, head_dim)
        if self.preallocate:
            cache = DynamicCache(config=self.model.config)
            buffer_layer = _buffer_layer_class()
            capacity = width + params.max_new_tokens
            cache.layers = [buffer_layer(k, v, capacity) for k, v in layers]
        else:
            cache = DynamicCache(ddp_cache_data=layers, config=self.model.config)
        padded = any(length != width for length in lengths)
        mask = torch.tensor([[0] * (width - m) + [1] * m for m in lengths], device=device)
        positions = torch.tensor(lengths, device=device)  # next position of each row
        logits = torch.stack([store[r.unit][1] for r in chunk])  # (rows, vocab)
        greedy = params.temperature == 0
        uniforms = (
            None
            if greedy
            else draw_uniforms(
                [row_seed(seed, r.prefix, r.sample) for r in chunk], params.max_new_tokens
            )
        )
        active = list(range(len(chunk)))  # chunk indices of the rows still in the batch
        for step in range(params.max_new_tokens):
            u = None if uniforms is None else uniforms[active, step]
            picked = sample_next(
                logits, u, temperature=params.temperature, top_k=params.top_k, top_p=params.top_p
            ).tolist()
            keep = []
            for slot, (k, token) in enumerate(zip(active, picked, strict=True)):
                self._advance(chunk[k], token, params, stop)
                if not chunk[k].done:
                    keep.append(slot)
            if not keep:
                break
            tokens = torch.tensor(picked, device=device)
            if len(keep) < len(active):
                index = torch.tensor(keep, device=device)
                cache.batch_select_indices(index)
                mask, positions, tokens = mask[index], positions[index], tokens[index]
                active = [active[s] for s in keep]
            mask = torch.cat([mask, mask.new_ones(len(active), 1)], dim=1)
            result = self.model(
                input_ids=tokens.unsqueeze(1),
                attention_mask=mask if padded else None,
                position_ids=positions.unsqueeze(1),
                cache=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            logits = result.logits[:, -1, :].float()  # (active, vocab)
            positions = positions + 1

    def _advance(self, row: _Row, token: int, params: SamplingParams, stop: StopAt) -> None:
        """Append a sampled token to a row and decide whether the row is finished."""
        row.tokens.append(token)
        if token in self.eos_token_ids and not params.ignore_eos:
            row.done, row.finish = True, "eos"
            row.text = self._decode_text(row.tokens[:-1])
            return
        if stop == "step" and token in self.newline_ids:
            text = self._decode_text(row.tokens)
            cut = find_step_end(text)
            if cut is not None:
                row.done, row.finish, row.text = True, "stop", text[:cut]
                return
        if len(row.tokens) >= params.max_new_tokens:
            row.done, row.finish = True, "length"
            row.text = self._decode_text(row.tokens)

    def _decode_text(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(
            tokens, skip_special_tokens=False, clean_up_tokenization_spaces=False
        )

    @property
    def newline_ids(self) -> frozenset[int]:
        """Ids of the tokens whose text holds a newline (only those can complete a boundary)."""
        if self._newline_ids is None:
            size = len(self.tokenizer)
            texts = self.tokenizer.batch_decode(
                [[i] for i in range(size)], clean_up_tokenization_spaces=False
            )
            self._newline_ids = frozenset(i for i, t in enumerate(texts) if "\n" in t)
        return self._newline_ids


@functools.cache
def _buffer_layer_class() -> type:
    """A ``DynamicLayer`` that writes new keys/values into preallocated buffers.

    ``DynamicLayer.update`` concatenates, copying the whole cache of every layer at every token;
    this layer writes the new position in place and exposes views of the filled part.
    """
    from transformers.cache_utils import DynamicLayer

    class BufferLayer(DynamicLayer):
        def __init__(self, keys: Any, values: Any, capacity: int) -> None:
            super().__init__()
            batch, heads, length, dim = keys.shape
            self._k = keys.new_empty(batch, heads, capacity, dim)
            self._v = values.new_empty(batch, heads, capacity, values.shape[-1])
            self._k[:, :, :length] = keys
            self._v[:, :, :length] = values
            self._length = length
            self.device = keys.device
            self.is_initialized = True
            self._views()

        def _views(self) -> None:
            self.keys = self._k[:, :, : self._length]
            self.values = self._v[:, :, : self._length]

        def update(
            self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any
        ) -> tuple[Any, Any]:
            new = key_states.shape[-2]
            if self._length + new > self._k.shape[2]:
                raise RuntimeError("KV buffer overflow: capacity must cover max_new_tokens")
            self._k[:, :, self._length : self._length + new] = key_states
            self._v[:, :, self._length : self._length + new] = value_states
            self._length += new
            self._views()
            return self.keys, self.values

        def batch_select_indices(self, indices: Any) -> None:
            self._k, self._v = self._k[indices], self._v[indices]
            self._views()

    return BufferLayer


def _default_eos(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    config = getattr(model, "generation_config", None)
    eos = getattr(config, "eos_token_id", None)
    if isinstance(eos, int):
        ids.add(eos)
    elif isinstance(eos, (list, tuple)):
        ids.update(int(e) for e in eos)
    return ids


def _check_cache(cache: Any) -> None:
    from transformers.cache_utils import DynamicLayer

    for layer in cache.layers:
        if type(layer) is not DynamicLayer:
            raise ModelLoadError(
                "prefix reuse needs a full-attention cache",
                got=type(layer).__name__,
                expected="DynamicLayer in every layer (Llama, Qwen2, Mistral without sliding "
                "window)",
                fix="use a full-attention model for TransformersGenerator",
            )
