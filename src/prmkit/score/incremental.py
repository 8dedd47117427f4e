"""Incremental step scoring for search: each new step is scored once, the prefix is never re-scored.

The :class:`~prmkit.score.scorer.Scorer` protocol scores whole traces. Search grows traces one
step at a time, so it needs a different seam, :class:`IncrementalScorer`: a :class:`ScoreState`
holds a partial trace and its step scores; :meth:`IncrementalScorer.extend` appends new steps
to many states at once and returns the new states (the parents stay valid, so a beam can be
extended many times).

:class:`IncrementalPRMScorer` implements it for a prmkit PRM in two modes:

* ``"kv"`` (tokcls, labeltok and hidden-state probe heads on a causal backbone): each state
  keeps the KV cache of the tokens up to its last step tag, stored as a tree of segments shared between
  parents and children. Extending runs only the new tokens through the model, on top of the
  parent's cache. Siblings (the ``M`` children of one beam) run in one batched forward pass, and
  the tokens they all share (the prompt, on the first round) run once.
* ``"recompute"`` (the ``implicit`` head, a probe reading log-probabilities, or a model
  without a KV cache): each extended trace runs through the model in one pass (batched like :class:`~prmkit.score.scorer.PRMScorer`);
  only the new steps' scores are taken, the prefix scores are kept. The implicit head needs the
  reference model's log-probabilities too, so caching it would mean two caches per beam; this
  mode keeps it simple at the cost of re-running the prefix tokens (counted in ``prm_tokens``).

Exactness: the input is always built by :func:`prmkit.prm.formats.encode` for the *whole*
extended trace, the same function training and one-pass scoring use. The new tokens are the ones
after the longest common prefix with the parent's tokens; if re-tokenizing the longer text changes
tokens the parent already ran (a BPE merge across a step boundary), the cache is cut back to the
common prefix and any step whose read position moved is scored again. A causal model's output at a
position depends only on the tokens up to it, so the scores equal a one-pass re-score of the final
trace up to float rounding (tested).

Example:
    >>> scorer = IncrementalPRMScorer(load_prm("runs/prm"))  # doctest: +SKIP
    >>> root = scorer.root("What is 2+3?")  # doctest: +SKIP
    >>> (child,), cost = scorer.extend([(root, ["2 + 3 = 5."])])  # doctest: +SKIP
    >>> child.scores, cost.prm_tokens  # doctest: +SKIP
    ((0.93,), 41)
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from prmkit.errors import ConfigError, DataFormatError, ModelLoadError
from prmkit.prm.formats import Encoded, encode

__all__ = [
    "IncrementalPRMScorer",
    "IncrementalScorer",
    "ScoreCost",
    "ScoreState",
]

Mode = Literal["auto", "kv", "recompute"]


@dataclass
class ScoreCost:
    """PRM compute of one or more :meth:`IncrementalScorer.extend` calls.

    Attributes:
        prm_tokens: Tokens that went through the PRM model (cached tokens are not counted).
        prm_forward_passes: Model forward calls (a batched call counts once).
        prm_steps_scored: Step scores computed (re-scored steps after a re-tokenization count).
    """

    prm_tokens: int = 0
    prm_forward_passes: int = 0
    prm_steps_scored: int = 0

    def add(self, other: ScoreCost) -> None:
        """Add another cost into this one."""
        self.prm_tokens += other.prm_tokens
        self.prm_forward_passes += other.prm_forward_passes
        self.prm_steps_scored += other.prm_steps_scored


class ScoreState:
    """A partial trace and its step scores (immutable; extending makes a new state).

    Attributes:
        prompt: The problem text, as the PRM reads it.
        steps: The steps so far.
        scores: One score per step.
    """

    __slots__ = ("_ids", "_node", "_positions", "prompt", "scores", "steps")

    def __init__(
        self,
        prompt: str,
        steps: tuple[str, ...] = (),
        scores: tuple[float, ...] = (),
        ids: tuple[int, ...] = (),
        positions: tuple[int, ...] = (),
        node: _KVNode | None = None,
    ) -> None:
        self.prompt = prompt
        self.steps = steps
        self.scores = scores
        self._ids = ids  # model input up to the last step tag (inclusive)
        self._positions = positions  # read position of each step
        self._node = node  # KV cache covering at least the common part of _ids ("kv" mode)

    def __repr__(self) -> str:
        return f"ScoreState(steps={len(self.steps)}, scores={[round(s, 4) for s in self.scores]})"


@runtime_checkable
class IncrementalScorer(Protocol):
    """Scores partial traces step by step, each step once."""

    name: str

    def root(self, prompt: str) -> ScoreState:
        """The empty state of a problem (no steps, nothing computed yet)."""
        ...

    def extend(
        self, items: Sequence[tuple[ScoreState, Sequence[str]]]
    ) -> tuple[list[ScoreState], ScoreCost]:
        """Append ``new_steps`` to each state; return the new states (in order) and the cost."""
        ...


class _KVNode:
    """The KV cache of token positions ``[start, end)``, on top of ``parent`` cut at ``start``."""

    __slots__ = ("end", "parent", "segment", "start")

    def __init__(self, parent: _KVNode | None, start: int, segment: list[tuple[Any, Any]]) -> None:
        self.parent = parent
        self.start = start
        self.segment = segment  # per layer (keys, values), each (1, kv_heads, end - start, dim)
        self.end = start + (segment[0][0].shape[2] if segment else 0)


def _gather(node: _KVNode | None, upto: int) -> list[tuple[Any, Any]] | None:
    """The KV cache of positions ``[0, upto)`` along ``node``'s chain, per layer, or None."""
    if upto == 0:
        return None
    pieces: list[list[tuple[Any, Any]]] = []
    while node is not None and upto > 0:
        if upto > node.end:  # pragma: no cover - callers only ask within a state's coverage
            raise RuntimeError("KV chain does not cover the requested prefix")
        if upto > node.start:
            take = upto - node.start
            pieces.append([(k[:, :, :take], v[:, :, :take]) for k, v in node.segment])
            upto = node.start
        node = node.parent
    if upto != 0:  # pragma: no cover - the caller never asks beyond a node's coverage
        raise RuntimeError("KV chain does not cover the requested prefix")
    if len(pieces) == 1:
        return pieces[0]
    import torch

    pieces.reverse()
    return [
        (
            torch.cat([p[layer][0] for p in pieces], dim=2),
            torch.cat([p[layer][1] for p in pieces], dim=2),
        )
        for layer in range(len(pieces[0]))
    ]


def _common(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


@dataclass
class _Item:
    """One extension request, resolved to tokens."""

    state: ScoreState
    steps: tuple[str, ...]
    ids: list[int]  # input up to the last tag
    positions: list[int]
    keep: int  # old scores kept
    start: int  # first token to run


class IncrementalPRMScorer:
    """An :class:`IncrementalScorer` over a prmkit PRM (see the module doc for the two modes).

    Args:
        prm: A loaded :class:`~prmkit.prm.heads.PRM`.
        mode: ``"kv"``, ``"recompute"``, or ``"auto"`` (``kv`` when the head and model allow it).
        batch_size: Rows per forward pass.
        name: The PRM name written to records (default: the PRM's source).

    Raises:
        ConfigError: ``mode="kv"`` for the implicit head or a model without a KV cache.
    """

    def __init__(
        self, prm: Any, *, mode: Mode = "auto", batch_size: int = 16, name: str | None = None
    ) -> None:
        self.prm = prm
        self.batch_size = batch_size
        self.name = name if name is not None else (prm.source or "prm")
        self._cache_arg = _cache_argument(self._kv_model(prm))
        # a log-probability feature reads the logit *before* a step's first token, which the
        # KV path computed in the parent's run: such probes recompute
        logprobs = prm.spec.head == "probe" and "logprobs" in prm.spec.probe_features
        kv_ok = prm.spec.head != "implicit" and not logprobs and self._cache_arg is not None
        if mode == "auto":
            mode = "kv" if kv_ok else "recompute"
        if mode not in ("kv", "recompute"):
            raise ConfigError(
                "unknown incremental scoring mode",
                got=mode,
                expected="'auto', 'kv' or 'recompute'",
                fix="pick one of them",
            )
        if mode == "kv" and not kv_ok:
            raise ConfigError(
                "KV-cache scoring is not available for this PRM",
                got={"head": prm.spec.head, "cache_argument": self._cache_arg},
                expected="a tokcls, labeltok or hidden-state probe head on a causal model with a "
                "KV cache",
                fix="use mode='recompute' (or 'auto')",
            )
        self.mode: Literal["kv", "recompute"] = mode

    @classmethod
    def from_checkpoint(
        cls, path: str, *, device: str = "cpu", dtype: str = "float32", **kwargs: Any
    ) -> IncrementalPRMScorer:
        """Load a checkpoint with :func:`prmkit.prm.checkpoint.load_prm` and wrap it."""
        from prmkit.prm.checkpoint import load_prm

        return cls(load_prm(path, device=device, dtype=dtype), **kwargs)

    @staticmethod
    def _kv_model(prm: Any) -> Any:
        if prm.spec.head == "probe":
            return prm.model.base_model if hasattr(prm.model, "base_model") else prm.model
        return prm.model

    # -- the protocol ------------------------------------------------------------------------

    def root(self, prompt: str) -> ScoreState:
        """The empty state of a problem."""
        return ScoreState(prompt)

    def extend(
        self, items: Sequence[tuple[ScoreState, Sequence[str]]]
    ) -> tuple[list[ScoreState], ScoreCost]:
        """Append steps to each state and score only what is new (one batched pass per group).

        Raises:
            DataFormatError: a trace grows beyond the spec's ``max_length``.
        """
        cost = ScoreCost()
        resolved = [self._resolve(state, list(new)) for state, new in items]
        todo = [r for r in resolved if r is not None]
        if self.mode == "kv":
            results = self._extend_kv(todo, cost)
        else:
            results = self._extend_recompute(todo, cost)
        out: list[ScoreState] = []
        it = iter(results)
        for (state, _), r in zip(items, resolved, strict=True):
            out.append(state if r is None else next(it))
        return out, cost

    # -- shared ------------------------------------------------------------------------------

    def _encode(self, prompt: str, steps: Sequence[str]) -> Encoded:
        enc = encode(self.prm.spec, self.prm.tokenizer, prompt, steps, where="search beam")
        if enc.truncated_steps:
            raise DataFormatError(
                f"{enc.truncated_steps} step(s) of a beam fall beyond the PRM's max_length",
                got=len(enc.input_ids),
                expected=f"all steps within {self.prm.spec.max_length} tokens",
                fix="raise the spec's max_length, or lower max_steps / step_tokens",
            )
        return enc

    def _resolve(self, state: ScoreState, new: list[str]) -> _Item | None:
        if not new:
            return None
        steps = (*state.steps, *new)
        enc = self._encode(state.prompt, steps)
        ids = enc.input_ids[: enc.step_positions[-1] + 1]
        lcp = _common(state._ids, ids)
        keep = 0
        while (
            keep < len(state.steps)
            and enc.step_positions[keep] == state._positions[keep]
            and enc.step_positions[keep] < lcp
        ):
            keep += 1
        start = lcp if keep == len(state.steps) else min(lcp, enc.step_positions[keep])
        return _Item(state, steps, ids, list(enc.step_positions), keep, start)

    def _finish(self, item: _Item, new_scores: list[float], node: _KVNode | None) -> ScoreState:
        scores = (*item.state.scores[: item.keep], *new_scores)
        return ScoreState(
            item.state.prompt, item.steps, scores, tuple(item.ids), tuple(item.positions), node
        )

    # -- recompute mode ----------------------------------------------------------------------

    def _extend_recompute(self, items: list[_Item], cost: ScoreCost) -> list[ScoreState]:
        from prmkit.score.scorer import PRMScorer, length_buckets

        scorer = PRMScorer(self.prm, batch_size=self.batch_size)
        encs = [self._encode(it.state.prompt, it.steps) for it in items]
        values = scorer.score_encoded(encs)
        cost.prm_tokens += sum(len(e.input_ids) for e in encs)
        cost.prm_forward_passes += len(
            length_buckets([len(e.input_ids) for e in encs], self.batch_size)
        )
        out = []
        for it, v in zip(items, values, strict=True):
            cost.prm_steps_scored += len(it.steps) - it.keep
            out.append(self._finish(it, v[it.keep :], None))
        return out

    # -- kv mode -----------------------------------------------------------------------------

    def _extend_kv(self, items: list[_Item], cost: ScoreCost) -> list[ScoreState]:
        import torch

        from prmkit.prm.heads import eval_mode

        groups: dict[tuple[int, int], list[int]] = {}
        for i, it in enumerate(items):
            groups.setdefault((id(it.state._node), it.start), []).append(i)
        results: list[ScoreState | None] = [None] * len(items)
        with torch.inference_mode(), eval_mode(self.prm.model, self.prm.probe):
            for members in groups.values():
                for lo in range(0, len(members), self.batch_size):
                    chunk = [items[i] for i in members[lo : lo + self.batch_size]]
                    for i, state in zip(
                        members[lo : lo + self.batch_size],
                        self._run_group(chunk, cost),
                        strict=True,
                    ):
                        results[i] = state
        return [r for r in results if r is not None]

    def _run_group(self, chunk: list[_Item], cost: ScoreCost) -> list[ScoreState]:
        """Extend items that share a parent node and start; shared tokens run once."""
        node, start = chunk[0].state._node, chunk[0].start
        tails = [it.ids[start:] for it in chunk]
        shared = len(tails[0])
        for t in tails[1:]:
            shared = min(shared, _common(tails[0], t))
        values: dict[int, dict[int, Any]] = {i: {} for i in range(len(chunk))}
        if len(chunk) > 1 and shared > 0:
            # the tokens every row has (the prompt on the first round) run once
            reads = sorted(
                {p for it in chunk for p in it.positions[it.keep :] if start <= p < start + shared}
            )
            (vals,), (seg,) = self._forward(node, start, [tails[0][:shared]], [reads], cost)
            node = _KVNode(node, start, seg)
            for i, it in enumerate(chunk):
                for p, v in zip(reads, vals, strict=True):
                    if p in it.positions[it.keep :]:
                        values[i][p] = v
            start += shared
        rest = [i for i, it in enumerate(chunk) if len(it.ids) > start]
        nodes: dict[int, _KVNode | None] = {i: node for i in range(len(chunk))}
        if rest:
            reads = [[p for p in chunk[i].positions[chunk[i].keep :] if p >= start] for i in rest]
            vals_rows, segs = self._forward(
                node, start, [chunk[i].ids[start:] for i in rest], reads, cost
            )
            for i, r, vals, seg in zip(rest, reads, vals_rows, segs, strict=True):
                values[i].update(zip(r, vals, strict=True))
                nodes[i] = _KVNode(node, start, seg)
        out = []
        for i, it in enumerate(chunk):
            new = [values[i][p] for p in it.positions[it.keep :]]
            cost.prm_steps_scored += len(new)
            out.append(self._finish(it, new, nodes[i]))
        return out

    def _forward(
        self,
        node: _KVNode | None,
        start: int,
        rows: list[list[int]],
        reads: list[list[int]],
        cost: ScoreCost,
    ) -> tuple[list[list[float]], list[list[tuple[Any, Any]]]]:
        """Run ``rows`` (new tokens from absolute position ``start``) on top of ``node``.

        Returns the scores at the absolute positions ``reads`` of each row, and each row's KV
        segment (its real tokens only).
        """
        import torch
        from transformers import DynamicCache

        from prmkit.prm.formats import resolve_label_token_ids
        from prmkit.prm.heads import to_scores

        prm, spec = self.prm, self.prm.spec
        model = self._kv_model(prm)
        device = prm.device
        width = max(len(r) for r in rows)
        pad = prm.pad_id()
        # right padding: a causal model never lets a real token see the pads after it
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=device)
        past = _gather(node, start)
        if past is None:
            cache = DynamicCache(config=model.config)
        else:
            b = len(rows)
            layers = [(k.expand(b, -1, -1, -1), v.expand(b, -1, -1, -1)) for k, v in past]
            cache = DynamicCache(ddp_cache_data=layers, config=model.config)
        kwargs: dict[str, Any] = {"input_ids": ids, self._cache_arg: cache, "use_cache": True}
        rel = [[p - start for p in r] for r in reads]
        if spec.head == "tokcls":
            logits = prm.model(**kwargs).logits  # (rows, width, 2)
            pos, neg = spec.positive_index, 1 - spec.positive_index
            outs = [(logits[b, r, pos] - logits[b, r, neg]).float() for b, r in enumerate(rel)]
        elif spec.head == "labeltok":
            keep = sorted({p for r in rel for p in r})
            index = {p: i for i, p in enumerate(keep)}
            plus, minus = resolve_label_token_ids(spec, prm.tokenizer)
            # only the read positions go through the LM head (1 when this run reads none)
            which = torch.tensor(keep, dtype=torch.long, device=device) if keep else 1
            logits = prm.model(**kwargs, logits_to_keep=which).logits
            pair = logits[..., [plus, minus]].float()  # (rows, kept, 2)
            outs = []
            for b, r in enumerate(rel):
                sel = pair[b, [index[p] for p in r]]
                outs.append(sel[:, 0] - sel[:, 1])
        else:  # probe
            hidden = model(**kwargs, output_hidden_states=True).hidden_states[spec.probe_layer]
            outs = [prm.probe(hidden[b, r]) for b, r in enumerate(rel)]
        _check_dynamic(cache)
        cost.prm_forward_passes += 1
        cost.prm_tokens += sum(len(r) for r in rows)
        scores = [to_scores(spec, o).float().cpu().tolist() for o in outs]
        segments = [
            [
                (
                    layer.keys[b : b + 1, :, start : start + len(r)].clone(),
                    layer.values[b : b + 1, :, start : start + len(r)].clone(),
                )
                for layer in cache.layers
            ]
            for b, r in enumerate(rows)
        ]
        return scores, segments


def _cache_argument(model: Any) -> str | None:
    """The name of the forward argument that takes a KV cache (``None``: no cache support)."""
    params = inspect.signature(model.forward).parameters
    for name in ("cache", "past_key_values"):
        if name in params:
            return name
    return None


def _check_dynamic(cache: Any) -> None:
    from transformers.cache_utils import DynamicLayer

    for layer in cache.layers:
        if type(layer) is not DynamicLayer:
            raise ModelLoadError(
                "KV-cache scoring needs a full-attention cache",
                got=type(layer).__name__,
                expected="DynamicLayer in every layer",
                fix="use mode='recompute' for sliding-window models",
            )
