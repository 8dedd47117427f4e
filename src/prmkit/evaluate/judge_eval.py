"""ProcessBench with an LLM critic: ask a judge model for each sample's first wrong step.

The critic protocol of QwenLM/ProcessBench (``code/run_eval.py``): the judge sees the problem and
the steps as ``<paragraph_i>`` blocks and answers the index in ``\\boxed{}``. One vote is greedy
decoding; several votes are sampled and the most common boxed answer wins. The prediction rules
follow that script exactly, which differs from :class:`~prmkit.annotate.judge.JudgeLabeler`'s own
majority in two places:

- a vote is the *text* inside the last ``\\boxed{...}``, whatever it holds; the most common text
  wins (a tie goes to the text seen first, as ``Counter.most_common`` does), and only then is it
  read as an integer;
- a winner that is not an integer, or no vote at all, is no prediction, and an integer past the
  last step is a wrong prediction: both count as wrong (reported in ``notes``).

Verdicts are kept in a :class:`~prmkit.annotate.store.RolloutStore`, so an interrupted evaluation
resumes without asking the judge again.

Example:
    >>> processbench_vote(["so \\\\boxed{2}", "\\\\boxed{-1}", "\\\\boxed{2}"])
    2
    >>> processbench_vote(["no box here"]) is None
    True
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from prmkit.annotate.judge import DEFAULT_TEMPLATE, JudgeLabeler
from prmkit.annotate.store import RolloutStore
from prmkit.errors import DataFormatError
from prmkit.generate.protocol import Generator, SamplingParams
from prmkit.io import iter_jsonl
from prmkit.records import Record, Trace

__all__ = [
    "JUDGE_SAMPLING",
    "judge_params",
    "judge_predictions",
    "judge_processbench",
    "load_subset_traces",
    "processbench_vote",
]

_BOXED_TEXT = re.compile(r"\\boxed\{([^}]*)\}")


def processbench_vote(texts: Sequence[str]) -> int | None:
    """The prediction from critique texts, by ProcessBench's rule (``None`` = no prediction)."""
    answers = []
    for text in texts:
        found = _BOXED_TEXT.findall(text)
        if found:
            answers.append(found[-1].strip())
    if not answers:
        return None
    winner = Counter(answers).most_common(1)[0][0]
    try:
        return int(winner)
    except ValueError:
        return None


JUDGE_SAMPLING = SamplingParams(temperature=0.0, top_p=1.0, max_new_tokens=2048, seed=42)
"""The judge's default sampling: greedy, as ProcessBench's one-vote critic; critiques up to 2048
tokens."""


def judge_params(votes: int, sampling: SamplingParams = JUDGE_SAMPLING) -> SamplingParams:
    """The judge's sampling for ``votes`` votes, by ProcessBench's rule.

    One vote: ``sampling`` as given (greedy by default). Several votes: N greedy critiques would
    all be the same, so a greedy ``sampling`` becomes ProcessBench's voting sampling
    (``--use_voting``: temperature 1, top-p 0.9); a temperature above 0 is used as given.

    Example:
        >>> judge_params(8).temperature, judge_params(8).top_p
        (1.0, 0.9)
    """
    if votes > 1 and sampling.temperature == 0:
        return replace(sampling, temperature=1.0, top_p=0.9)
    return sampling


def load_subset_traces(path: str | os.PathLike[str]) -> list[Trace]:
    """The samples of one subset file as traces (problem in ``prompt``), in file order.

    Reads ProcessBench JSON (a list), or JSONL of ProcessBench objects or prmkit records.
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        from prmkit.formats import processbench

        return list(processbench.read(path))
    traces = []
    for lineno, obj in iter_jsonl(path):
        where = f"{path}:{lineno}"
        if isinstance(obj, dict) and "kind" in obj:
            record = Record.from_dict(obj, where=where)
            if not isinstance(record, Trace):
                raise DataFormatError(
                    "record is not a trace",
                    got=obj.get("kind"),
                    expected="a trace, labeled_trace or scored_trace record",
                    fix="pass the labelled traces the judge should check",
                    where=where,
                )
            traces.append(record)
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("problem"), str):
            raise DataFormatError(
                "sample has no problem text",
                got=sorted(obj) if isinstance(obj, dict) else type(obj).__name__,
                expected="a ProcessBench object with 'problem' and 'steps'",
                fix="pass the ProcessBench file (the judge needs the problem)",
                where=where,
            )
        traces.append(
            Trace(id=obj["id"], problem_id=obj["id"], prompt=obj["problem"], steps=obj["steps"])
        )
    return traces


def judge_predictions(
    traces: Sequence[Trace],
    generator: Generator,
    store: RolloutStore,
    *,
    votes: int = 1,
    sampling: SamplingParams = JUDGE_SAMPLING,
    judge: str = "",
    template: str = DEFAULT_TEMPLATE,
    max_prompts_per_call: int = 8,
) -> tuple[dict[str, int | None], dict[str, Any]]:
    """Ask the judge about every trace; return predictions by id and a cost/validity summary.

    A prediction is ``None`` when the judge gave no usable answer, or pointed past the last
    step; :func:`~prmkit.evaluate.processbench.evaluate_predictions` counts those as wrong.
    ``sampling`` goes through :func:`judge_params`; its seed (0 when ``None``) also keys the
    store.
    """
    labeler = JudgeLabeler(
        generator,
        store,
        votes=votes,
        params=judge_params(votes, sampling),
        seed=sampling.seed if sampling.seed is not None else 0,
        judge=judge,
        template=template,
        max_prompts_per_call=max_prompts_per_call,
    )
    predictions: dict[str, int | None] = {}
    no_answer = out_of_range = prompt_tokens = completion_tokens = 0
    for trace, verdicts in zip(traces, labeler.verdicts(traces), strict=True):
        prompt_tokens += sum(v.prompt_tokens for v in verdicts)
        completion_tokens += sum(v.completion_tokens for v in verdicts)
        pred = processbench_vote([v.text for v in verdicts])
        if pred is None:
            no_answer += 1
        elif not -1 <= pred < len(trace.steps):
            out_of_range += 1
            pred = None
        predictions[trace.id] = pred
    summary = {
        "judge": judge,
        "votes": votes,
        "template": template,
        "n_no_answer": no_answer,
        "n_out_of_range": out_of_range,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
    }
    return predictions, summary


def judge_processbench(
    data: Sequence[str | os.PathLike[str]],
    generator: Generator,
    *,
    votes: int = 1,
    sampling: SamplingParams = JUDGE_SAMPLING,
    judge: str = "",
    template: str = DEFAULT_TEMPLATE,
    store: str | os.PathLike[str] | None = None,
    batch: int = 8,
    predictions_out: str | os.PathLike[str] | None = None,
) -> tuple[dict[str, int | None], dict[str, Any]]:
    """An LLM critic's first-error prediction for every sample of the ProcessBench subset files.

    Every file is checked before the judge is asked anything. Each critique is kept in a
    :class:`~prmkit.annotate.store.RolloutStore` at ``store`` (a temporary file when ``None``),
    so a rerun with the same store asks the judge only what it has not answered.

    Args:
        data: The subset files (ProcessBench JSON, or JSONL with the problem text).
        generator: The judge (any :class:`~prmkit.generate.protocol.Generator`).
        votes: Critiques per sample (1 = ProcessBench's greedy critic).
        sampling: The critic's sampling (see :func:`judge_params`).
        judge: The judge's name, recorded in the summary and keying the store.
        template: Prompt template under ``prmkit/prompts`` (slots ``{problem}``,
            ``{paragraphs}``).
        store: The SQLite file of critiques.
        batch: Samples judged per generator call.
        predictions_out: Also write the predictions as JSONL ``{"id", "prediction"}``.

    Returns:
        ``(predictions, summary)`` as :func:`judge_predictions`, the summary with ``store``.

    Raises:
        ConfigError: ``votes`` or ``batch`` < 1.
        DataFormatError: a subset file is malformed.

    Example:
        >>> from prmkit.generate import OpenAIGenerator
        >>> critic = OpenAIGenerator("http://localhost:8000/v1", "Qwen/Qwen2.5-7B-Instruct")
        >>> preds, summary = judge_processbench(["math.json"], critic)  # doctest: +SKIP
        >>> evaluate_processbench(["math.json"], predictions=preds)["mean_f1"]  # doctest: +SKIP
        48.3
    """
    import tempfile

    from prmkit.config import check_range
    from prmkit.evaluate.processbench import load_subset
    from prmkit.io import write_jsonl

    check_range("votes", votes, ge=1)
    check_range("batch", batch, ge=1)
    for path in data:  # the data's own checks first, before the judge is asked
        load_subset(path)
    traces = [t for path in data for t in load_subset_traces(path)]
    with tempfile.TemporaryDirectory() as tmp:
        rollouts = RolloutStore(store if store is not None else f"{tmp}/judge.sqlite")
        try:
            predictions, summary = judge_predictions(
                traces,
                generator,
                rollouts,
                votes=votes,
                sampling=sampling,
                judge=judge,
                template=template,
                max_prompts_per_call=batch,
            )
        finally:
            rollouts.close()
    summary["store"] = None if store is None else str(store)
    if predictions_out is not None:
        write_jsonl(predictions_out, ({"id": k, "prediction": v} for k, v in predictions.items()))
    return predictions, summary
