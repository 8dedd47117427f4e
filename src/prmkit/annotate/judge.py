"""LLM-as-judge labels with the ProcessBench critic protocol: n votes, the majority wins.

The judge sees the problem and the solution with each step wrapped in ``<paragraph_i>`` ...
``</paragraph_i>`` (``i`` from 0), and answers the index of the first wrong paragraph in
``\\boxed{}``, or ``\\boxed{-1}`` when every paragraph is right. The prompt lives in
``prmkit/prompts/judge_processbench.txt`` (our wording of the protocol; pass ``template`` to use
another file with the same ``{problem}`` and ``{paragraphs}`` slots).

Each trace gets ``votes`` samples from any :class:`~prmkit.generate.protocol.Generator`; a vote is
valid when its last ``\\boxed{}`` holds an integer in ``[-1, steps)``. The label is the most
common valid vote; a tie goes to the earliest error (``-1`` counts as later than every step).
Invalid votes are counted in ``meta["annotation"]["invalid_votes"]``; a trace with no valid vote
is not returned (:attr:`JudgeLabeler.unlabeled` lists it). Verdicts are stored in the rollout
store like rollouts, so a resumed job does not ask again.

Example:
    >>> format_paragraphs(["2 + 3 = 5", "5 * 2 = 11"])
    '<paragraph_0>\\n2 + 3 = 5\\n</paragraph_0>\\n\\n<paragraph_1>\\n5 * 2 = 11\\n</paragraph_1>'
    >>> parse_verdict("The slip is in paragraph 1. \\\\boxed{1}", 2)
    1
    >>> majority([2, -1, 2, -1, 1])
    2
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict

from prmkit.annotate.binary_search import first_error_labels
from prmkit.annotate.protocol import Cost, labeled
from prmkit.annotate.rollouts import Usage
from prmkit.annotate.store import Rollout, RolloutStore, derive_seed
from prmkit.errors import ConfigError
from prmkit.generate.protocol import Generator, SamplingParams
from prmkit.records import LabeledTrace, Problem, Trace
from prmkit.tasks.answers import extract_boxed

__all__ = ["JudgeLabeler", "format_paragraphs", "judge_prompt", "majority", "parse_verdict"]

DEFAULT_TEMPLATE = "judge_processbench"
_INTEGER = re.compile(r"-?\d+")


def format_paragraphs(steps: Sequence[str]) -> str:
    """Steps as ``<paragraph_i>`` blocks, indexed from 0, separated by blank lines."""
    return "\n\n".join(f"<paragraph_{i}>\n{step}\n</paragraph_{i}>" for i, step in enumerate(steps))


def judge_prompt(problem_text: str, steps: Sequence[str], template: str = DEFAULT_TEMPLATE) -> str:
    """The critic prompt for one solution (template from ``prmkit/prompts/<template>.txt``)."""
    from prmkit.tasks.prompts import load_prompt

    text = load_prompt(template)
    for slot in ("{problem}", "{paragraphs}"):
        if slot not in text:
            raise ConfigError(
                "judge template lacks a slot",
                got=template,
                expected="a template with {problem} and {paragraphs}",
                fix=f"add {slot} to prmkit/prompts/{template}.txt",
            )
    return text.replace("{problem}", problem_text).replace("{paragraphs}", format_paragraphs(steps))


def parse_verdict(text: str, n_steps: int) -> int | None:
    """The index in the last ``\\boxed{}`` if it is -1 or a step index, else ``None``.

    As ProcessBench: only the last box counts; a last box that is not an integer (e.g.
    ``\\boxed{\\text{none}}`` after an earlier ``\\boxed{3}``) is an invalid vote.
    """
    content = extract_boxed(text)
    if content is None or not _INTEGER.fullmatch(content):
        return None
    index = int(content)
    return index if -1 <= index < n_steps else None


def majority(votes: Sequence[int]) -> int:
    """The most common vote; ties go to the earliest error (-1 ranks after every step)."""
    counts = Counter(votes)
    best = max(counts.values())
    tied = [v for v, c in counts.items() if c == best]
    return min(tied, key=lambda v: float("inf") if v < 0 else v)


class JudgeLabeler:
    """First-error labels from a judge model's majority vote.

    Args:
        generator: The judge (any :class:`Generator`).
        store: Where verdicts are kept (resumable).
        problems: Problems by id (the judge is shown ``problem.prompt``; a trace whose problem
            is missing is shown its own ``prompt``).
        votes: Samples per trace.
        params: Sampling settings (``seed`` is replaced per call).
        seed: The job seed.
        judge: A name for the judge model, part of the store namespace.
        template: Prompt template name.
        max_prompts_per_call: Most traces judged in one generator call.
    """

    name = "judge"

    def __init__(
        self,
        generator: Generator,
        store: RolloutStore,
        problems: Mapping[str, Problem] | None = None,
        *,
        votes: int = 5,
        params: SamplingParams | None = None,
        seed: int = 0,
        judge: str = "",
        template: str = DEFAULT_TEMPLATE,
        max_prompts_per_call: int = 4,
    ) -> None:
        if votes < 1:
            raise ConfigError(
                "votes must be positive", got=votes, expected="an integer >= 1", fix="e.g. votes=5"
            )
        self.generator = generator
        self.store = store
        self.problems = problems or {}
        self.votes = votes
        self.params = params or SamplingParams(max_new_tokens=512)
        self.seed = seed
        self.template = template
        self.max_prompts_per_call = max_prompts_per_call
        self.namespace = store.namespace(
            {
                "kind": "judge",
                "judge": judge,
                "seed": seed,
                "template": template,
                "params": {k: v for k, v in asdict(self.params).items() if k != "seed"},
            }
        )
        self.unlabeled: list[str] = []
        """Ids of traces that got no valid vote in the last :meth:`label` call."""
        self.used = Usage()
        """Distinct verdicts this judge returned (all calls), drawn now or reused."""

    def _prompt(self, trace: Trace) -> str:
        problem = self.problems.get(trace.problem_id)
        return judge_prompt(problem.prompt if problem else trace.prompt, trace.steps, self.template)

    def verdicts(self, traces: Sequence[Trace]) -> list[list[Rollout]]:
        """The ``votes`` stored verdicts of each trace, asking the judge for the missing ones."""
        prompts = [self._prompt(t) for t in traces]
        keys = [hashlib.sha256(p.encode("utf-8")).hexdigest()[:24] for p in prompts]
        todo: dict[str, tuple[int, int]] = {}  # key -> (trace index, stored count)
        for i, key in enumerate(keys):
            have = self.store.count(self.namespace, key)
            if have < self.votes and key not in todo:
                todo[key] = (i, have)
        groups: dict[int, list[tuple[str, int, int]]] = {}
        for key, (i, have) in todo.items():
            groups.setdefault(self.votes - have, []).append((key, i, have))
        for n, items in groups.items():
            for c in range(0, len(items), self.max_prompts_per_call):
                chunk = items[c : c + self.max_prompts_per_call]
                seed = derive_seed(self.seed, "judge", *(f"{k}:{h}" for k, _, h in chunk), n)
                params = SamplingParams(**{**asdict(self.params), "seed": seed})
                outs = self.generator.sample([prompts[i] for _, i, _ in chunk], n, params)
                rows = []
                for (key, i, have), completions in zip(chunk, outs, strict=True):
                    for j, completion in enumerate(completions):
                        verdict = parse_verdict(completion.text, len(traces[i].steps))
                        rows.append(
                            Rollout(
                                state=key,
                                idx=have + j,
                                trace_id=traces[i].id,
                                prefix_len=len(traces[i].steps),
                                text=completion.text,
                                answer=None if verdict is None else str(verdict),
                                correct=verdict is not None,
                                prompt_tokens=completion.prompt_tokens,
                                completion_tokens=completion.completion_tokens,
                                finish_reason=completion.finish_reason,
                                seed=seed,
                            )
                        )
                self.store.add(self.namespace, rows)
                self.used.mark_drawn(rows)
        out = [self.store.get(self.namespace, key, self.votes) for key in keys]
        for verdicts in out:
            self.used.count(verdicts)
        return out

    def label(self, traces: Sequence[Trace]) -> list[LabeledTrace]:
        """Judge every trace; traces without a valid vote are left out (see :attr:`unlabeled`)."""
        self.unlabeled = []
        out = []
        for trace, verdicts in zip(traces, self.verdicts(traces), strict=True):
            cost = Cost()
            cost.add(verdicts)
            votes = [int(v.answer) for v in verdicts if v.answer is not None]
            if not votes:
                self.unlabeled.append(trace.id)
                continue
            first_error = majority(votes)
            out.append(
                labeled(
                    trace,
                    first_error_labels(len(trace.steps), first_error),
                    first_error,
                    "judge",
                    cost,
                    method="judge",
                    votes=votes,
                    invalid_votes=len(verdicts) - len(votes),
                    agreement=votes.count(first_error) / len(votes),
                )
            )
        return out
