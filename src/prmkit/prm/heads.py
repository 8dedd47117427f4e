"""PRM heads: turn a backbone's outputs at the step positions into one number per step.

Every head goes through :func:`step_outputs`, used by both training and scoring:

* ``tokcls``: a 2-label token-classification model; the step logit is
  ``logits[pos, positive] - logits[pos, negative]``, so ``sigmoid`` of it equals
  ``softmax(logits[pos])[positive]``.
* ``labeltok``: a causal LM; the step logit is ``lm_logits[pos, +] - lm_logits[pos, -]`` (so
  ``sigmoid`` of it is the softmax over the two label tokens).
* ``probe``: a small MLP on a frozen hidden layer at the step position and/or on statistics of
  the frozen model's log-probabilities of the step's tokens; outputs one logit.
* ``implicit``: ``beta * sum log pi(t)/pi_ref(t)`` over the tokens of each step (tag
  included); a reward, not a logit. Its sum over steps is the outcome logit used in training.

Example:
    >>> out = step_outputs(prm, input_ids, attention_mask, encs)  # doctest: +SKIP
    >>> scores = to_scores(prm.spec, out[0])  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from prmkit.errors import ConfigError, ModelLoadError
from prmkit.prm.batch import ModelBatch, batch_groups, packed_batch, padded_batch
from prmkit.prm.formats import Encoded, resolve_label_token_ids
from prmkit.prm.spec import PRMSpec

__all__ = [
    "LOGPROB_FEATURES",
    "PRM",
    "ProbeHead",
    "batched_probe_inputs",
    "hidden_features",
    "layout_batch",
    "logprob_features",
    "make_probe",
    "packing_supported",
    "pad_batch",
    "probe_inputs",
    "probe_sizes",
    "resolve_packing",
    "step_outputs",
    "step_values",
    "to_scores",
    "token_logratios",
]


class ProbeHead(nn.Module):
    """A small MLP (or linear map when ``width == 0``) from step features to one logit.

    The features are a hidden state (``hidden_size`` values, layer-normalised first) followed by
    ``n_extra`` scalar features (:func:`logprob_features`, used as they are). ``hidden_size``
    may be 0 when only the extra features are read.

    Example:
        >>> head = ProbeHead(hidden_size=8, width=4)
        >>> head(torch.zeros(3, 8)).shape
        torch.Size([3])
        >>> ProbeHead(hidden_size=0, width=0, n_extra=6)(torch.zeros(2, 6)).shape
        torch.Size([2])
    """

    def __init__(self, hidden_size: int, width: int, n_extra: int = 0) -> None:
        super().__init__()
        self.hidden_size, self.n_extra = hidden_size, n_extra
        if n_extra == 0:  # the original layout (state-dict keys net.0 = norm, net.1 = linear)
            if width:
                self.net = nn.Sequential(
                    nn.LayerNorm(hidden_size),
                    nn.Linear(hidden_size, width),
                    nn.GELU(),
                    nn.Linear(width, 1),
                )
            else:
                self.net = nn.Sequential(nn.LayerNorm(hidden_size), nn.Linear(hidden_size, 1))
            return
        self.norm = nn.LayerNorm(hidden_size) if hidden_size else nn.Identity()
        size = hidden_size + n_extra
        if width:
            self.net = nn.Sequential(nn.Linear(size, width), nn.GELU(), nn.Linear(width, 1))
        else:
            self.net = nn.Sequential(nn.Linear(size, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(n, hidden_size + n_extra)`` features -> ``(n,)`` logits."""
        x = features.float()
        if self.n_extra:
            h, extra = x[:, : self.hidden_size], x[:, self.hidden_size :]
            x = torch.cat([self.norm(h), extra], dim=-1) if self.hidden_size else extra
        return self.net(x).squeeze(-1)


def probe_sizes(spec: PRMSpec, hidden_size: int) -> tuple[int, int]:
    """``(hidden part, extra part)`` of the probe's input for ``spec.probe_features``."""
    hidden = hidden_size if "hidden" in spec.probe_features else 0
    extra = len(LOGPROB_FEATURES) if "logprobs" in spec.probe_features else 0
    return hidden, extra


def make_probe(spec: PRMSpec, hidden_size: int) -> ProbeHead:
    """The probe head ``spec`` describes, for a backbone of ``hidden_size``."""
    hidden, extra = probe_sizes(spec, hidden_size)
    return ProbeHead(hidden, spec.probe_hidden, extra)


@dataclass
class PRM:
    """A loaded or in-training PRM: spec, tokenizer, backbone and head parts.

    Attributes:
        spec: The input format and head.
        tokenizer: The tokenizer (with any added tag tokens).
        model: ``tokcls``: a token-classification model; ``labeltok``/``implicit``: a causal
            LM (the policy for ``implicit``); ``probe``: the frozen causal LM.
        probe: ``probe`` only: the MLP.
        ref_model: ``implicit`` only: the frozen reference model.
        source: Where it was loaded from.
    """

    spec: PRMSpec
    tokenizer: Any
    model: Any
    probe: ProbeHead | None = None
    ref_model: Any = None
    source: str = ""
    _digit_mask: torch.Tensor | None = field(default=None, repr=False, compare=False)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad if pad is not None else 0)

    def digit_mask(self) -> torch.Tensor:
        """``(vocab,)`` bool: which token ids contain a digit (cached; for logprob features)."""
        if self._digit_mask is None:
            self._digit_mask = digit_token_mask(self.tokenizer)
        return self._digit_mask


def pad_batch(
    encs: Sequence[Encoded], pad_id: int, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token ids so step positions stay valid; return ``(input_ids, attention_mask)``."""
    batch = padded_batch(encs, pad_id, device)
    return batch.input_ids, batch.attention_mask  # type: ignore[return-value]


def _as_batch(
    input_ids: torch.Tensor | ModelBatch,
    attention_mask: torch.Tensor | None,
    encs: Sequence[Encoded] | None,
) -> ModelBatch:
    """A :class:`ModelBatch` from one, or from a right-padded ``(input_ids, mask)`` pair."""
    if isinstance(input_ids, ModelBatch):
        return input_ids
    n = input_ids.shape[0]
    batch = ModelBatch.build(input_ids, attention_mask, None, encs or [], list(range(n)), [0] * n)
    return batch.to(input_ids.device)


def _backbone(model: Any) -> Any:
    return model.base_model if hasattr(model, "base_model") else model


def digit_token_mask(tokenizer: Any) -> torch.Tensor:
    """``(len(tokenizer),)`` bool: token ids whose text contains a digit 0-9."""
    tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    return torch.tensor([any(c.isdigit() for c in str(t or "")) for t in tokens])


LOGPROB_FEATURES: tuple[str, ...] = (
    "min_logprob",
    "mean_logprob",
    "min_margin",
    "digit_min_logprob",
    "digit_min_margin",
    "digit_mean_logprob",
)
"""Per-step statistics of the backbone's own next-token predictions (``probe_features``
``logprobs``), over the step's tokens (tag included): the lowest and the mean log-probability of
the tokens written, the lowest *margin* (``log p(token) - max log p``: 0 when the token was the
model's first choice), and the same three over the tokens that contain a digit (0 when the step
has none). Values are clipped to ``[-LOGPROB_CLIP, 0]`` and divided by ``LOGPROB_SCALE``. A
wrong number the policy would rarely have written shows up as a low digit log-probability and
margin; the statistics are a verifier's reading of the model's own surprise."""
LOGPROB_CLIP = 20.0
LOGPROB_SCALE = 5.0


def _step_statistics(
    logits: torch.Tensor,
    target: torch.Tensor,
    spans: Sequence[tuple[int, int]],
    digits: torch.Tensor,
) -> torch.Tensor:
    """:data:`LOGPROB_FEATURES` of one trace: ``logits[i]`` predicts ``target[i]``; ``spans``
    are ``[lo, hi)`` index ranges of each step's tokens into both."""
    logits = logits.float()
    picked = logits.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    written = picked - logits.logsumexp(-1)  # log p of the token written
    margin = picked - logits.max(-1).values  # log p(token) - max log p
    is_digit = digits.to(target.device)[target.clamp(max=len(digits) - 1)]
    rows = []
    for lo, hi in spans:
        w, m, d = written[lo:hi], margin[lo:hi], is_digit[lo:hi]
        if len(w) == 0:
            rows.append(torch.zeros(len(LOGPROB_FEATURES), device=logits.device))
            continue
        wd, md = w[d], m[d]
        zero = w.new_zeros(())
        rows.append(
            torch.stack(
                [
                    w.min(),
                    w.mean(),
                    m.min(),
                    wd.min() if len(wd) else zero,
                    md.min() if len(md) else zero,
                    wd.mean() if len(wd) else zero,
                ]
            )
        )
    feats = torch.stack(rows) if rows else logits.new_zeros(0, len(LOGPROB_FEATURES))
    return feats.clamp(min=-LOGPROB_CLIP, max=0.0) / LOGPROB_SCALE


def logprob_features(
    logits: torch.Tensor,
    input_ids: torch.Tensor,
    encs: Sequence[Encoded],
    digits: torch.Tensor,
    offset: int = 0,
) -> list[torch.Tensor]:
    """:data:`LOGPROB_FEATURES` of every kept step: one ``(n_steps, 6)`` tensor per trace.

    Args:
        logits: ``(batch, seq - offset, vocab)`` next-token logits of the causal LM at positions
            ``offset ..`` (``offset`` at most one before the first step's first token).
        input_ids: ``(batch, seq)`` the (right-padded) input.
        encs: The encoded traces of the batch.
        digits: ``(vocab,)`` bool mask of digit tokens (:func:`digit_token_mask`).
        offset: The input position of ``logits[:, 0]``.
    """
    out = []
    for b, e in enumerate(encs):
        # logits at t - 1 predict token t
        spans = [(max(s - 1 - offset, 0), end - 1 - offset) for s, end in e.step_token_spans()]
        out.append(_step_statistics(logits[b, :-1], input_ids[b, offset + 1 :], spans, digits))
    return out


def _trace_logprob_features(
    prm: PRM, hidden: torch.Tensor | None, logits: torch.Tensor | None, batch: ModelBatch
) -> list[torch.Tensor]:
    """:data:`LOGPROB_FEATURES` per trace of ``batch``, from the last hidden state (the LM head
    then runs on each trace's step tokens only) or from full ``logits``."""
    head = prm.model.get_output_embeddings()
    out = []
    for b, e in enumerate(batch.encs):
        row, start, end = batch.span(b)
        first = max(e.content_start - 1, 0)  # the logit that predicts the first step token
        lo, hi = start + first, end - 1
        step_logits = head(hidden[row, lo:hi]) if hidden is not None else logits[row, lo:hi]  # type: ignore[index]
        target = batch.input_ids[row, lo + 1 : hi + 1]
        spans = [(max(s - 1 - first, 0), t - 1 - first) for s, t in e.step_token_spans()]
        out.append(_step_statistics(step_logits, target, spans, prm.digit_mask()))
    return out


def probe_inputs(
    prm: PRM,
    input_ids: torch.Tensor | ModelBatch,
    attention_mask: torch.Tensor | None = None,
    encs: Sequence[Encoded] | None = None,
) -> list[torch.Tensor]:
    """The probe's input at every kept step, as ``spec.probe_features`` says: ``(n_steps, d)``.

    Training (:func:`prmkit.train.loop.probe_features`) and scoring both read features here.
    Takes a :class:`~prmkit.prm.batch.ModelBatch` (padded or packed) or a right-padded
    ``(input_ids, attention_mask, encs)``.
    """
    batch = _as_batch(input_ids, attention_mask, encs)
    spec = prm.spec
    if "logprobs" not in spec.probe_features:
        return _hidden_at_steps(prm.model, batch, spec.probe_layer)
    model = prm.model
    plain_head = model.get_output_embeddings() is not None and all(
        # logits = lm_head(last hidden state), nothing after it
        getattr(model.config, k, None) is None
        for k in ("final_logit_softcapping", "logit_scale")
    )
    want_hidden = "hidden" in spec.probe_features
    if plain_head:  # the prompt's logits are never read: the LM head runs on the steps only
        out = _backbone(model)(**batch.model_inputs(), output_hidden_states=want_hidden)
        feats = _trace_logprob_features(prm, out.last_hidden_state, None, batch)
    else:
        out = model(**batch.model_inputs(), output_hidden_states=want_hidden)
        feats = _trace_logprob_features(prm, None, out.logits, batch)
    if not want_hidden:
        return feats
    hidden = _at_steps(out.hidden_states[spec.probe_layer], batch)
    return [torch.cat([h.float(), f], dim=-1) for h, f in zip(hidden, feats, strict=True)]


def packing_supported(model: Any) -> bool:
    """Whether ``model`` reads packed rows as separate sequences.

    True for transformers' own model classes whose module builds masks with
    ``masking_utils.create_causal_mask`` (it turns restarting ``position_ids`` into a
    block-causal mask, or varlen flash-attention): Llama, Qwen2, Mistral, ... False for models
    with their own code (``trust_remote_code``, e.g. Qwen2.5-Math-PRM), which may let one trace
    attend to another: those are scored padded.
    """
    import sys

    inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft
    module = type(inner).__module__
    return module.startswith("transformers.models.") and hasattr(
        sys.modules.get(module), "create_causal_mask"
    )


def resolve_packing(model: Any, packing: bool | Literal["auto"]) -> bool:
    """Whether to pack: :func:`packing_supported` for ``"auto"``, else ``bool(packing)``."""
    return packing_supported(model) if packing == "auto" else bool(packing)


def layout_batch(
    prm: PRM,
    encs: Sequence[Encoded],
    *,
    packing: bool = False,
    row_tokens: int | None = None,
    pin: bool = False,
) -> ModelBatch:
    """``encs`` as one model input on the PRM's device: packed rows or padded rows."""
    if packing:
        return packed_batch(encs, prm.pad_id(), prm.device, row_tokens=row_tokens, pin=pin)
    return padded_batch(encs, prm.pad_id(), prm.device, pin=pin)


def batched_probe_inputs(
    prm: PRM,
    encs: Sequence[Encoded],
    batch_size: int = 8,
    max_batch_tokens: int | None = None,
    packing: bool = False,
) -> list[torch.Tensor]:
    """:func:`probe_inputs` of many traces: length-bucketed batches, inference mode.

    Returns one float32 CPU ``(n_steps, d)`` tensor per trace, in input order (the features a
    probe trains on, and that several probes on one backbone and spec can score from).
    """
    out: list[torch.Tensor] = [torch.empty(0)] * len(encs)
    buckets = batch_groups([len(e.input_ids) for e in encs], batch_size, max_batch_tokens, packing)
    with torch.inference_mode(), eval_mode(prm.model):
        for group in buckets:
            batch = layout_batch(prm, [encs[i] for i in group], packing=packing)
            for i, f in zip(group, probe_inputs(prm, batch), strict=True):
                out[i] = f.float().cpu()
    return out


def truncate_for_probe(model: Any, layer: int) -> int:
    """Drop the decoder blocks a probe at ``hidden_states[layer]`` never reads.

    ``hidden_states[i]`` for ``0 <= i < n_layers`` is the raw input of block ``i`` (the output of
    block ``i - 1``; 0 = embeddings), so blocks ``0..i`` suffice: with them the model returns the
    same ``hidden_states[i]`` at ``(i + 1) / n_layers`` of the cost. The last entry (``-1`` or
    ``n_layers``, after the final norm) needs every block; nothing is dropped then. The config's
    ``num_hidden_layers`` follows, so a saved checkpoint holds only the kept blocks.

    Returns:
        The layer index to use from now on: ``layer`` itself when nothing was dropped, else its
        non-negative form (a negative index would point elsewhere in the shorter model).
    """
    backbone = _backbone(model)
    inner = getattr(backbone, "model", backbone)
    config = backbone.config
    n = config.num_hidden_layers
    index = layer if layer >= 0 else n + 1 + layer
    if not 0 <= index <= n:
        raise ConfigError(
            "probe_layer out of range",
            got=layer,
            expected=f"an index into hidden_states: -{n + 1}..{n}",
            fix="e.g. probe_layer=-1 (last) or a middle layer such as 16",
        )
    layers = getattr(inner, "layers", None)
    if index >= n or layers is None:
        return layer
    inner.layers = layers[: index + 1]
    config.num_hidden_layers = index + 1
    return index


def _at_steps(hidden: torch.Tensor, batch: ModelBatch) -> list[torch.Tensor]:
    """``(rows, width, d)`` read at each trace's steps with one gather: ``(n_steps, d)`` each."""
    return list(hidden[batch.step_rows, batch.step_cols].split(batch.step_counts))


def _hidden_at_steps(model: Any, batch: ModelBatch, layer: int) -> list[torch.Tensor]:
    out = _backbone(model)(**batch.model_inputs(), output_hidden_states=True)
    return _at_steps(out.hidden_states[layer], batch)


def hidden_features(
    model: Any,
    input_ids: torch.Tensor | ModelBatch,
    attention_mask: torch.Tensor | None,
    encs: Sequence[Encoded] | None,
    layer: int,
) -> list[torch.Tensor]:
    """Hidden states of layer ``layer`` at each trace's step positions: ``(n_steps, hidden)``."""
    return _hidden_at_steps(model, _as_batch(input_ids, attention_mask, encs), layer)


def _token_logprobs(model: Any, batch: ModelBatch) -> torch.Tensor:
    """``(rows, width)``: log p(token t | tokens < t); 0 at t = 0.

    In a packed row the first token of each trace reads the previous trace's last logit; that
    value is never used (step sums start after the prompt's first token)."""
    logits = model(**batch.model_inputs()).logits.float()
    logits = logits[:, :-1]  # (rows, width-1, vocab)
    target = batch.input_ids[:, 1:].unsqueeze(-1)
    lp = logits.gather(-1, target).squeeze(-1) - logits.logsumexp(-1)
    return torch.cat([torch.zeros_like(lp[:, :1]), lp], dim=1)


def token_logratios(
    prm: PRM,
    input_ids: torch.Tensor | ModelBatch,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """``(rows, width)``: ``log pi(t) - log pi_ref(t)`` for each token (0 at t = 0)."""
    if prm.ref_model is None:
        raise ModelLoadError(
            "implicit PRM without a reference model",
            got=None,
            expected="PRM.ref_model",
            fix="build it with build_prm or load_prm",
        )
    batch = _as_batch(input_ids, attention_mask, None)
    policy = _token_logprobs(prm.model, batch)
    with torch.no_grad():
        ref = _token_logprobs(prm.ref_model, batch)
    return policy - ref


def step_values(
    prm: PRM,
    input_ids: torch.Tensor | ModelBatch,
    attention_mask: torch.Tensor | None = None,
    encs: Sequence[Encoded] | None = None,
) -> torch.Tensor:
    """Every kept step's value of a batch, trace after trace, in one ``(n,)`` tensor.

    The same values as :func:`step_outputs` (which splits this by ``batch.step_counts``):
    logits (score = sigmoid) for ``tokcls``/``labeltok``/``probe``, per-step rewards for
    ``implicit``. ``tokcls`` and ``labeltok`` read every step with one gather.
    """
    batch = _as_batch(input_ids, attention_mask, encs)
    spec = prm.spec
    if spec.head == "tokcls":
        logits = prm.model(**batch.model_inputs())[0]  # (rows, width, 2)
        pos, neg = spec.positive_index, 1 - spec.positive_index
        picked = logits[batch.step_rows, batch.step_cols].float()  # (n, 2)
        return picked[:, pos] - picked[:, neg]
    if spec.head == "labeltok":
        plus, minus = resolve_label_token_ids(spec, prm.tokenizer)
        logits = prm.model(  # the LM head runs only at the step columns
            **batch.model_inputs(), logits_to_keep=batch.keep_cols
        ).logits
        diff = logits[..., plus].float() - logits[..., minus].float()  # (rows, k): no (n, V) copy
        return diff[batch.step_rows, batch.step_keep]
    if spec.head == "probe":
        if prm.probe is None:
            raise ModelLoadError(
                "probe PRM without its head",
                got=None,
                expected="PRM.probe",
                fix="build it with build_prm or load_prm",
            )
        feats = probe_inputs(prm, batch)
        return prm.probe(torch.cat(feats)) if feats else torch.empty(0, device=prm.device)
    # implicit
    ratios = token_logratios(prm, batch)  # (rows, width)
    if batch.packed:  # a trace's first token reads the previous trace's logit: not its own
        ratios = ratios.clone()
        ratios[batch.rows, batch.offsets] = 0.0
    cum = ratios.cumsum(1)  # along each row; a trace's sums are differences within its row
    all_ends = cum[batch.step_rows, batch.step_cols].split(batch.step_counts)
    out = []
    for row, start, e, ends in zip(batch.rows, batch.offsets, batch.encs, all_ends, strict=True):
        first = start + e.content_start - 1  # the sum before the first step's first token
        before = cum[row, first : first + 1] if first >= 0 else cum.new_zeros(1)
        out.append(spec.beta * (ends - torch.cat([before, ends[:-1]])))
    return torch.cat(out) if out else ratios.new_zeros(0)


def step_outputs(
    prm: PRM,
    input_ids: torch.Tensor | ModelBatch,
    attention_mask: torch.Tensor | None = None,
    encs: Sequence[Encoded] | None = None,
) -> list[torch.Tensor]:
    """One value per kept step for each trace of a batch.

    Takes a :class:`~prmkit.prm.batch.ModelBatch` (padded or packed) or a right-padded
    ``(input_ids, attention_mask, encs)``. Returns logits (score = sigmoid) for
    ``tokcls``/``labeltok``/``probe`` and per-step rewards for ``implicit``; one
    ``(n_steps,)`` tensor per trace.
    """
    batch = _as_batch(input_ids, attention_mask, encs)
    return list(step_values(prm, batch).split(batch.step_counts))


def to_scores(spec: PRMSpec, values: torch.Tensor) -> torch.Tensor:
    """Step scores from :func:`step_outputs`: probabilities, or rewards for ``implicit``."""
    return values if spec.head == "implicit" else torch.sigmoid(values)


@contextlib.contextmanager
def eval_mode(*modules: Any):
    """Put modules in eval mode for the block, restoring their previous mode."""
    states = [(m, m.training) for m in modules if m is not None]
    for m, _ in states:
        m.eval()
    try:
        yield
    finally:
        for m, was in states:
            m.train(was)
