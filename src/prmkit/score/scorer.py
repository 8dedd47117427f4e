"""Score traces with a PRM: one forward pass per trace, batched with length bucketing.

The :class:`Scorer` protocol is the seam search and evaluation depend on; :class:`PRMScorer`
implements it for any prmkit checkpoint (or an in-memory :class:`~prmkit.prm.heads.PRM`).

Example:
    >>> scorer = PRMScorer.from_checkpoint("runs/prm")  # doctest: +SKIP
    >>> scorer.score([trace])  # doctest: +SKIP
    [[0.93, 0.12]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from prmkit.errors import DataFormatError
from prmkit.prm.batch import batch_groups
from prmkit.prm.formats import Encoded, encode, length_buckets
from prmkit.records import LabeledTrace, ScoredTrace, Trace
from prmkit.score.aggregate import aggregate_all

__all__ = ["PRMScorer", "Scorer", "length_buckets", "to_scored"]


@runtime_checkable
class Scorer(Protocol):
    """Anything that gives one score per step for each trace."""

    def score(self, traces: Sequence[Trace]) -> list[list[float]]:
        """Step scores, one list per trace, in input order."""
        ...


def to_scored(trace: Trace, scores: Sequence[float], prm: str) -> ScoredTrace:
    """A :class:`ScoredTrace` with the step scores; aggregates go to ``meta['prm_aggregates']``.

    Labels of a :class:`LabeledTrace` are kept.
    """
    fields = trace.trace_fields()
    fields["meta"] = {**trace.meta, "prm_aggregates": aggregate_all(scores)}
    extra: dict[str, Any] = {}
    if isinstance(trace, (LabeledTrace, ScoredTrace)) and trace.labels is not None:
        extra = {
            "labels": list(trace.labels),
            "first_error": trace.first_error,
            "label_source": trace.label_source,
        }
    return ScoredTrace(**fields, step_scores=[float(s) for s in scores], prm=prm, **extra)


class PRMScorer:
    """Scores every step of a trace in one forward pass.

    Traces go through in length-sorted batches. Packed (the default for transformers' own model
    classes): at most ``batch_size`` traces and ``max_batch_tokens`` real tokens per batch,
    laid back to back in rows (:func:`prmkit.prm.batch.packed_batch`): no padding, the same
    scores. Padded (models with their own code, or ``packing=False``): at most ``batch_size``
    traces and ``max_batch_tokens`` padded tokens per batch.
    On CUDA the host tensors are pinned and copied asynchronously, and scores come back to the
    host once at the end, so the next batch is prepared while the card computes.

    Args:
        prm: A loaded :class:`~prmkit.prm.heads.PRM`.
        batch_size: Traces per forward pass.
        max_batch_tokens: Optional cap on tokens per batch (padded, or real when packed).
        packing: Pack traces into rows without padding; ``"auto"``: when the model supports
            it (:func:`~prmkit.prm.heads.packing_supported`).
        row_tokens: Packed row capacity; ``None``: the batch's longest trace (attention with a
            block mask then costs no more than padding), or the whole batch in one row under
            flash-attention (varlen kernels skip the cross-trace work).
    """

    def __init__(
        self,
        prm: Any,
        *,
        batch_size: int = 8,
        max_batch_tokens: int | None = None,
        packing: bool | Literal["auto"] = "auto",
        row_tokens: int | None = None,
    ) -> None:
        self.prm = prm
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.packing = packing
        self.row_tokens = row_tokens

    @classmethod
    def from_checkpoint(
        cls,
        path: str,
        *,
        spec: Any = None,
        device: str = "cpu",
        dtype: str = "auto",
        trust_remote_code: bool = False,
        attn_implementation: str = "auto",
        **kwargs: Any,
    ) -> PRMScorer:
        """Load a checkpoint with :func:`prmkit.prm.checkpoint.load_prm` and wrap it.

        ``dtype="auto"`` is bfloat16 where the device computes it natively (CUDA with bf16),
        float32 elsewhere (an AVX2 CPU emulates bf16 ~20x slower).
        """
        from prmkit.prm.checkpoint import load_prm

        return cls(
            load_prm(
                path,
                device=device,
                dtype=dtype,
                trust_remote_code=trust_remote_code,
                spec=spec,
                attn_implementation=attn_implementation,
            ),
            **kwargs,
        )

    def encode(self, trace: Trace) -> Encoded:
        """The model input of one trace, the same as training builds.

        Raises:
            DataFormatError: ``max_length`` cuts off some step tags.
        """
        enc = encode(
            self.prm.spec,
            self.prm.tokenizer,
            trace.prompt,
            trace.steps,
            where=f"trace {trace.id!r}",
        )
        if enc.truncated_steps:
            raise DataFormatError(
                f"{enc.truncated_steps} step(s) fall beyond max_length",
                got=enc.n_steps,
                expected=f"all steps within {self.prm.spec.max_length} tokens",
                fix="raise the spec's max_length, or shorten the trace",
                where=f"trace {trace.id!r}",
            )
        return enc

    def uses_packing(self) -> bool:
        """Whether batches are packed (``packing="auto"``: when the model reads packed rows
        as separate sequences, :func:`~prmkit.prm.heads.packing_supported`)."""
        from prmkit.prm.heads import resolve_packing

        return resolve_packing(self.prm.model, self.packing)

    def batches(self, encs: Sequence[Encoded]) -> list[list[int]]:
        """The trace indices of each forward pass, longest first."""
        lengths = [len(e.input_ids) for e in encs]
        return batch_groups(lengths, self.batch_size, self.max_batch_tokens, self.uses_packing())

    def _row_tokens(self) -> int | None:
        if self.row_tokens is not None:
            return self.row_tokens
        attn = getattr(self.prm.model.config, "_attn_implementation", "") or ""
        return 1 << 30 if attn.startswith("flash") else None

    def score_encoded(self, encs: Sequence[Encoded]) -> list[list[float]]:
        """Step scores for already-encoded traces."""
        import torch

        from prmkit.prm.heads import eval_mode, layout_batch, step_values, to_scores

        packing = self.uses_packing()
        pin = self.prm.device.type == "cuda"
        order: list[int] = []
        counts: list[int] = []
        values: list[Any] = []
        with torch.inference_mode(), eval_mode(self.prm.model, self.prm.probe):
            for group in self.batches(encs):
                batch = layout_batch(
                    self.prm,
                    [encs[i] for i in group],
                    packing=packing,
                    row_tokens=self._row_tokens(),
                    pin=pin,
                )
                order.extend(group)
                counts.extend(batch.step_counts)
                values.append(to_scores(self.prm.spec, step_values(self.prm, batch)))
            # one copy to the host at the end: no sync per batch
            flat = torch.cat(values).float().cpu().tolist() if values else []
        out: list[list[float]] = [[] for _ in encs]
        at = 0
        for i, n in zip(order, counts, strict=True):
            out[i] = flat[at : at + n]
            at += n
        return out

    def score(self, traces: Sequence[Trace]) -> list[list[float]]:
        """Step scores, one list per trace, in input order."""
        return self.score_encoded([self.encode(t) for t in traces])

    def probe_inputs(self, traces: Sequence[Trace]) -> list[Any]:
        """A probe PRM's step features, ``(n_steps, d)`` per trace, for :meth:`score_inputs`.

        Several probes on the same frozen backbone and spec (e.g. one per label source) score
        from one pass: compute the inputs once, then call each probe's ``score_inputs``.
        """
        from prmkit.prm.heads import batched_probe_inputs

        self._require_probe()
        encs = [self.encode(t) for t in traces]
        return batched_probe_inputs(
            self.prm, encs, self.batch_size, self.max_batch_tokens, self.uses_packing()
        )

    def score_inputs(self, inputs: Sequence[Any]) -> list[list[float]]:
        """Step scores from :meth:`probe_inputs` of a PRM with the same backbone and spec."""
        import torch

        self._require_probe()
        with torch.inference_mode():
            return [
                torch.sigmoid(self.prm.probe(x.to(self.prm.device))).float().cpu().tolist()
                for x in inputs
            ]

    def _require_probe(self) -> None:
        if self.prm.spec.head != "probe" or self.prm.probe is None:
            from prmkit.errors import ConfigError

            raise ConfigError(
                "step features are a probe PRM's",
                got=self.prm.spec.head,
                expected="a probe head",
                fix="call score() for other heads",
            )

    def score_records(
        self, traces: Sequence[Trace], prm_name: str | None = None
    ) -> list[ScoredTrace]:
        """Score traces and build :class:`ScoredTrace` records."""
        name = prm_name if prm_name is not None else self.prm.source
        return [to_scored(t, s, name) for t, s in zip(traces, self.score(traces), strict=True)]
