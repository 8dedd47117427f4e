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
from pathlib import Path
from typing import Any

from prmkit.annotate.judge import DEFAULT_TEMPLATE, JudgeLabeler
from prmkit.annotate.store import RolloutStore
from prmkit.errors import DataFormatError
from prmkit.generate.protocol import Generator, SamplingParams
from prmkit.io import iter_jsonl
from prmkit.records import Record, Trace

__all__ = ["judge_params", "judge_predictions", "load_subset_traces", "processbench_vote"]

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


def judge_params(votes: int, max_new_tokens: int, seed: int = 42) -> SamplingParams:
    """ProcessBench's sampling: greedy for one vote, temperature 1 and top-p 0.9 for several."""
    if votes == 1:
        return SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens, seed=seed)
    return SamplingParams(temperature=1.0, top_p=0.9, max_new_tokens=max_new_tokens, seed=seed)


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
    max_new_tokens: int = 2048,
    seed: int = 42,
    judge: str = "",
    template: str = DEFAULT_TEMPLATE,
    max_prompts_per_call: int = 8,
) -> tuple[dict[str, int | None], dict[str, Any]]:
    """Ask the judge about every trace; return predictions by id and a cost/validity summary.

    A prediction is ``None`` when the judge gave no usable answer, or pointed past the last
    step; :func:`~prmkit.evaluate.processbench.evaluate_predictions` counts those as wrong.
    """
    labeler = JudgeLabeler(
        generator,
        store,
        votes=votes,
        params=judge_params(votes, max_new_tokens, seed),
        seed=seed,
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
