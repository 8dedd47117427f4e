"""Request bodies to model inputs: traces and :class:`~prmkit.prm.formats.Encoded` ids, checked.

Every route encodes its inputs here, before anything is queued, so bad input fails fast with a
4xx naming the field (``traces[2].steps``, ``input[1]``, ``query[0]``):

* ``/v1/score``: a trace's ``steps`` as given, or its ``text`` split with the spec's
  segmentation (:func:`prmkit.score.text_trace`), encoded by :meth:`PRMScorer.encode` (the same
  ids training built).
* ``/pooling``: text that already holds the step tags. It is tokenized as
  :func:`prmkit.prm.formats.encode` tokenizes ``joined`` text, and each step is read at the
  token holding the last character of a tag occurrence (the rule ``encode`` applies to the tags
  it renders). Only ``joined`` specs with a ``tokcls`` or ``labeltok`` head are served here.
* ``/get_reward``: ``query = prompt + response``; the prompt is stripped (exactly), the response
  split with the spec's segmentation.

Example:
    >>> from prmkit.prm import PRMSpec
    >>> pooling_positive_index(PRMSpec.from_format("qwen_prm", head="tokcls"))
    1
    >>> pooling_rows(1, [0.75])
    [[0.25, 0.75]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prmkit.errors import PrmkitError
from prmkit.prm.formats import Encoded
from prmkit.records import Trace
from prmkit.score.text import text_trace
from prmkit.serve.errors import ApiError

__all__ = [
    "check_count",
    "pooling_encoded",
    "pooling_positive_index",
    "pooling_refusal",
    "pooling_rows",
    "reward_traces",
    "score_traces",
]


def check_count(n: int, limit: int, noun: str, key: str, param: str | None) -> None:
    """413 when a request holds more than ``limit`` of something (``key``: the config key)."""
    if n > limit:
        raise ApiError(
            413,
            f"{param + ': ' if param else ''}{n} {noun}; this server takes at most {limit} "
            f"({key}); split the request",
            param=param,
        )


def _bad(exc: PrmkitError, param: str | None) -> ApiError:
    return ApiError(400, str(exc), param=param)


def score_traces(spec: Any, items: Sequence[Any], *, max_steps: int, batch: bool) -> list[Trace]:
    """The traces of a ``/v1/score`` request (``items``: :class:`~prmkit.serve.schemas.TraceIn`).

    Raises:
        ApiError: 400 for a trace without steps or a blank text, 413 beyond ``max_steps``.
    """
    out = []
    for i, item in enumerate(items):
        param = f"traces[{i}]" if batch else None
        try:
            if item.text is not None:
                trace = text_trace(spec, item.prompt, item.text, id=str(i), where=param)
            else:
                trace = Trace(id=str(i), problem_id=str(i), prompt=item.prompt, steps=item.steps)
        except PrmkitError as exc:
            raise _bad(exc, param) from None
        step_param = f"{param}.steps" if param else "steps"
        check_count(len(trace.steps), max_steps, "steps", "max_steps", step_param)
        out.append(trace)
    return out


def reward_traces(
    spec: Any, queries: Sequence[str], prompts: Sequence[str], *, max_steps: int
) -> list[Trace]:
    """The traces of a ``/get_reward`` request: each query with its prompt stripped, split.

    Raises:
        ApiError: 400 when the lists differ in length, a query does not start with its prompt,
            or a response is blank; 413 beyond ``max_steps``.
    """
    if len(queries) != len(prompts):
        raise ApiError(
            400,
            f"'query' has {len(queries)} items and 'prompts' {len(prompts)}; send one prompt "
            "per query",
            param="prompts",
        )
    out = []
    for i, (query, prompt) in enumerate(zip(queries, prompts, strict=True)):
        if not query.startswith(prompt):
            raise ApiError(
                400,
                f"query[{i}] does not start with prompts[{i}] (compared exactly, character by "
                "character); send query = prompt + response",
                param=f"query[{i}]",
            )
        try:
            trace = text_trace(spec, prompt, query[len(prompt) :], id=str(i), where=f"query[{i}]")
        except PrmkitError as exc:
            raise _bad(exc, f"query[{i}]") from None
        check_count(len(trace.steps), max_steps, "steps", "max_steps", f"query[{i}]")
        out.append(trace)
    return out


def pooling_refusal(spec: Any) -> str | None:
    """Why ``/pooling`` cannot serve this PRM (``None``: it can)."""
    if spec.head not in ("tokcls", "labeltok"):
        return (
            f"/pooling serves token-classification (tokcls) and label-token (labeltok) PRMs; "
            f"this PRM's head is {spec.head!r}, whose step values have no per-class "
            "probabilities at a tag (and need the step spans, which tagged text does not "
            "carry). Score it with POST /v1/score"
        )
    if spec.tokenization != "joined":
        return (
            "this PRM tokenizes each step separately (spec.tokenization='per_step', TRL's "
            "format); tagged text tokenized as one string can give other tokens than training "
            "did. Score it with POST /v1/score (steps as a list)"
        )
    return None


def pooling_positive_index(spec: Any) -> int | None:
    """The column of a ``/pooling`` row that holds P(step correct) (``None``: not served).

    ``tokcls``: rows are the 2-class softmax in class order, so ``spec.positive_index``.
    ``labeltok``: rows are the softmax over ``[negative, positive]`` label-token logits, so 1.
    """
    if pooling_refusal(spec) is not None:
        return None
    return spec.positive_index if spec.head == "tokcls" else 1


def pooling_rows(positive_index: int | None, scores: Sequence[float]) -> list[list[float]]:
    """``/pooling`` rows from step scores (P(step correct)), P in column ``positive_index``.

    ``positive_index`` is :func:`pooling_positive_index` of the spec (a server computes it once).
    """
    if positive_index == 1:
        return [[1.0 - p, p] for p in scores]
    return [[p, 1.0 - p] for p in scores]


def _tag_ends(text: str, tag: str) -> list[int]:
    """The character offset just past each non-overlapping occurrence of ``tag``."""
    ends = []
    at = text.find(tag)
    while at >= 0:
        ends.append(at + len(tag))
        at = text.find(tag, at + len(tag))
    return ends


def pooling_encoded(
    prm: Any, text: str, *, add_special_tokens: bool, max_steps: int, param: str
) -> Encoded:
    """Tokenize tagged text; read each step at the token holding its tag's last character.

    Raises:
        ApiError: 400 when the text has no tag, two tags end in one token, or a tag falls
            beyond the spec's ``max_length``; 413 beyond ``max_steps`` tags.
    """
    spec = prm.spec
    ends = _tag_ends(text, spec.step_tag)
    if not ends:
        raise ApiError(
            400,
            f"{param}: no step tag {spec.step_tag!r} in the text; put the PRM's step tag after "
            "every step",
            param=param,
        )
    check_count(len(ends), max_steps, "step tags", "max_steps", param)
    enc = prm.tokenizer(text, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    spans = list(enc["offset_mapping"])
    positions: list[int] = []
    t = 0
    for end in ends:
        char = end - 1
        while t < len(spans) and spans[t][1] <= char:
            t += 1
        if t == len(spans) or spans[t][0] > char:
            raise ApiError(
                400,
                f"{param}: a step tag character maps to no token (the tokenizer drops it)",
                param=param,
            )
        if positions and positions[-1] == t:
            raise ApiError(
                400,
                f"{param}: two step tags end in the same token; separate the steps",
                param=param,
            )
        positions.append(t)
    if positions[-1] >= spec.max_length:
        raise ApiError(
            400,
            f"{param}: {len(ids)} tokens, and step tags beyond the PRM's max_length "
            f"({spec.max_length}); shorten the input",
            param=param,
        )
    return Encoded(
        input_ids=ids[: spec.max_length],
        step_positions=positions,
        content_start=0,
        n_steps=len(positions),
    )
