"""``PRMSpec``: how a PRM reads its input, stored as ``prm_spec.json`` beside every checkpoint.

A spec is plain data. It says how a trace becomes model input (step tag, joins, chat template,
tokenization), which head turns hidden states into step scores, and the defaults used at
inference (max length, aggregation). The same spec drives training and scoring, so the token
positions that receive labels are the positions read at inference.

Three reference formats are provided as data in :data:`FORMATS` (never chosen by model name):

* ``trl``: TRL stepwise supervision; the prompt and each step are tokenized separately, a
  separator (default ``"\\n"``) is appended after each step, the label sits on its last token.
* ``qwen_prm``: Qwen2.5-Math-PRM; ``<extra_0>`` after each step inside the chat template,
  score = ``softmax(logits)[:, 1]`` at the ``<extra_0>`` positions.
* ``math_shepherd``: Math-Shepherd / OpenRLHF; ``" ки"`` after each step, steps joined by
  ``"\\n"``, score = probability of ``+`` in a softmax over the LM-head logits of ``[+, -]``.

Example:
    >>> spec = PRMSpec.from_format("math_shepherd", head="labeltok")
    >>> spec.step_tag, spec.label_tokens
    (' ки', ['+', '-'])
    >>> PRMSpec.from_dict(spec.to_dict()) == spec
    True
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from prmkit.errors import ConfigError, ModelLoadError
from prmkit.io import read_json, write_json

__all__ = [
    "AGGREGATIONS",
    "FORMATS",
    "HEADS",
    "PROBE_FEATURES",
    "SPEC_FILE",
    "SPEC_VERSION",
    "PRMSpec",
    "load_spec",
    "save_spec",
]

SPEC_FILE = "prm_spec.json"
SPEC_VERSION = 1
HEADS = ("tokcls", "labeltok", "probe", "implicit")
AGGREGATIONS = ("min", "prod", "last", "mean")
PROBE_FEATURES = ("hidden", "logprobs", "hidden+logprobs")
TOKENIZATIONS = ("joined", "per_step")

QWEN_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."

# Input formats as data: each entry is a partial PRMSpec (the head is chosen separately).
FORMATS: dict[str, dict[str, Any]] = {
    "trl": {
        "step_tag": "\n",
        "tokenization": "per_step",
        "add_bos": True,
        "use_chat_template": False,
    },
    "qwen_prm": {
        "step_tag": "<extra_0>",
        "tokenization": "joined",
        "use_chat_template": True,
        "system_prompt": QWEN_SYSTEM,
        "positive_index": 1,
    },
    "math_shepherd": {
        "step_tag": " ки",
        "step_join": "\n",
        "prompt_join": " ",
        "tokenization": "joined",
        "use_chat_template": False,
        "label_tokens": ["+", "-"],
    },
}


@dataclass(frozen=True)
class PRMSpec:
    """How a PRM turns a trace into model input and reads one score per step.

    Attributes:
        head: ``tokcls`` (2-label token classification), ``labeltok`` (label tokens read off
            the LM head), ``probe`` (small MLP on frozen hidden states) or ``implicit``
            (``beta * sum log pi/pi_ref`` over each step's tokens).
        step_tag: Text appended after every step; the score is read at its last token.
        step_join: Text between one step's tag and the next step (``joined`` only).
        prompt_join: Text between the prompt and the first step (``joined``, no chat template).
        tokenization: ``joined`` renders the whole text and tokenizes it once (as model cards
            do); ``per_step`` tokenizes the prompt and each ``step + tag`` separately and
            concatenates the ids (as TRL does).
        use_chat_template: Wrap prompt and steps in the tokenizer's chat template (system,
            user = prompt, assistant = the tagged steps).
        system_prompt: System message for the chat template (``None``: no system message).
        add_bos: ``per_step``: prepend the tokenizer's BOS token (if it has one).
        add_special_tokens: ``joined``: let the tokenizer add its special tokens.
        positive_index: ``tokcls``: index of the "step is correct" class.
        label_tokens: ``labeltok``: ``[positive, negative]`` token texts (one token each).
        label_token_ids: ``labeltok``: explicit ``[positive, negative]`` ids; they take
            precedence over ``label_tokens`` (e.g. Math-Shepherd's ``encode("+ -")[1:]``).
        beta: ``implicit``: the log-ratio scale (0.05, as PRIME and Yuan et al. 2024).
        probe_layer: ``probe``: which hidden-state layer feeds the MLP (-1 = last).
        probe_hidden: ``probe``: MLP width (0 = a linear probe).
        probe_features: ``probe``: what the MLP reads at each step: ``hidden`` (the hidden state
            of ``probe_layer`` at the step position), ``logprobs`` (statistics of the
            backbone's own log-probabilities of the step's tokens; see
            :func:`prmkit.prm.heads.logprob_features`) or ``hidden+logprobs`` (both). The
            log-probabilities need the whole model, so no block is dropped then.
        max_length: Inputs are cut to this many tokens.
        aggregation: Default trace score from step scores: min, prod, last or mean.
        segmentation: How a plain solution text is split into steps before scoring (a
            :data:`prmkit.steps.STRATEGIES` name; servers and RL reward adapters use it).
        segmentation_pattern: The separator regex when ``segmentation`` is ``regex``.
        base: Where the backbone came from (informational).
        version: Spec schema version.
    """

    head: str
    step_tag: str
    step_join: str = ""
    prompt_join: str = ""
    tokenization: str = "joined"
    use_chat_template: bool = False
    system_prompt: str | None = None
    add_bos: bool = False
    add_special_tokens: bool = True
    positive_index: int = 1
    label_tokens: list[str] | None = None
    label_token_ids: list[int] | None = None
    beta: float = 0.05
    probe_layer: int = -1
    probe_hidden: int = 256
    probe_features: str = "hidden"
    max_length: int = 2048
    aggregation: str = "min"
    segmentation: str = "double_newline"
    segmentation_pattern: str | None = None
    base: str = ""
    version: int = SPEC_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def __hash__(self) -> int:  # frozen dataclass with list/dict fields
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def validate(self, where: str | None = None) -> None:
        """Raise :class:`ConfigError` for an inconsistent spec."""

        def fail(name: str, got: Any, expected: str, fix: str) -> None:
            raise ConfigError(
                f"invalid PRMSpec field '{name}'", got=got, expected=expected, fix=fix, where=where
            )

        if self.head not in HEADS:
            fail("head", self.head, f"one of {list(HEADS)}", "pick a listed head")
        if not isinstance(self.step_tag, str) or not self.step_tag:
            fail("step_tag", self.step_tag, "non-empty text", "set the text appended after steps")
        for name in ("step_join", "prompt_join"):
            if not isinstance(getattr(self, name), str):
                fail(name, getattr(self, name), "a string", "use '' for none")
        if self.tokenization not in TOKENIZATIONS:
            fail(
                "tokenization",
                self.tokenization,
                f"one of {list(TOKENIZATIONS)}",
                "use 'joined' (model cards) or 'per_step' (TRL)",
            )
        if self.tokenization == "per_step" and (
            self.use_chat_template or self.step_join or self.prompt_join
        ):
            fail(
                "tokenization",
                self.tokenization,
                "'joined' when a chat template, step_join or prompt_join is used",
                "per_step tokenization only appends the tag after each step",
            )
        if self.system_prompt is not None and not self.use_chat_template:
            fail(
                "system_prompt",
                self.system_prompt,
                "None without a chat template",
                "set use_chat_template=true or drop the system prompt",
            )
        from prmkit.steps import STRATEGIES

        if self.segmentation not in STRATEGIES:
            fail(
                "segmentation",
                self.segmentation,
                f"one of {list(STRATEGIES)}",
                "e.g. double_newline (blank lines) or step_markers ('Step k:')",
            )
        if (self.segmentation == "regex") != (self.segmentation_pattern is not None):
            fail(
                "segmentation_pattern",
                self.segmentation_pattern,
                "a regex exactly when segmentation is 'regex'",
                "set both, or neither",
            )
        if self.positive_index not in (0, 1):
            fail("positive_index", self.positive_index, "0 or 1", "2-label heads only")
        if self.label_token_ids is not None and not (
            isinstance(self.label_token_ids, list)
            and len(self.label_token_ids) == 2
            and all(isinstance(i, int) and i >= 0 for i in self.label_token_ids)
            and self.label_token_ids[0] != self.label_token_ids[1]
        ):
            fail(
                "label_token_ids",
                self.label_token_ids,
                "two different token ids [pos, neg]",
                "e.g. label_token_ids=[648, 387], or leave it null and set label_tokens",
            )
        if self.head == "labeltok" and self.label_token_ids is None:
            ok = (
                isinstance(self.label_tokens, list)
                and len(self.label_tokens) == 2
                and all(isinstance(t, str) and t for t in self.label_tokens)
                and self.label_tokens[0] != self.label_tokens[1]
            )
            if not ok:
                fail(
                    "label_tokens",
                    self.label_tokens,
                    "two different token texts [pos, neg]",
                    "e.g. label_tokens=['+', '-']",
                )
        if isinstance(self.beta, bool) or not isinstance(self.beta, (int, float)) or self.beta <= 0:
            fail("beta", self.beta, "a positive number", "e.g. beta=0.05")
        if not isinstance(self.probe_hidden, int) or self.probe_hidden < 0:
            fail("probe_hidden", self.probe_hidden, "an integer >= 0", "0 = linear probe")
        if self.probe_features not in PROBE_FEATURES:
            fail(
                "probe_features",
                self.probe_features,
                f"one of {list(PROBE_FEATURES)}",
                "e.g. probe_features=hidden+logprobs",
            )
        if not isinstance(self.max_length, int) or self.max_length < 8:
            fail("max_length", self.max_length, "an integer >= 8", "e.g. max_length=2048")
        if self.aggregation not in AGGREGATIONS:
            fail(
                "aggregation",
                self.aggregation,
                f"one of {list(AGGREGATIONS)}",
                "pick a listed aggregation",
            )
        if self.version != SPEC_VERSION:
            fail("version", self.version, f"{SPEC_VERSION}", "upgrade prmkit")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> PRMSpec:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str | None = None) -> PRMSpec:
        """Build and validate a spec; unknown keys are errors."""
        if not isinstance(data, dict):
            raise ConfigError(
                "PRMSpec is not an object",
                got=type(data).__name__,
                expected="a JSON object",
                fix="write the spec as a mapping",
                where=where,
            )
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(
                "unknown PRMSpec keys",
                got=unknown,
                expected=f"only {sorted(names)}",
                fix="remove them, or put free-form data under 'extra'",
                where=where,
            )
        for key in ("head", "step_tag"):
            if key not in data:
                raise ConfigError(
                    "missing PRMSpec key",
                    got=sorted(data),
                    expected=f"'{key}'",
                    fix=f"add '{key}'",
                    where=where,
                )
        try:
            return cls(**data)
        except ConfigError as exc:
            if where is None or exc.where:
                raise
            raise ConfigError(
                exc.what, got=exc.got, expected=exc.expected, fix=exc.fix, where=where
            ) from None
        except TypeError as exc:  # pragma: no cover - dataclass signature mismatch
            raise ConfigError(
                f"bad PRMSpec ({exc})",
                got=data,
                expected="PRMSpec fields",
                fix="check the field names",
                where=where,
            ) from None

    @classmethod
    def from_format(cls, name: str, *, head: str, **overrides: Any) -> PRMSpec:
        """A spec from a named input format in :data:`FORMATS` plus a head and overrides.

        Raises:
            ConfigError: unknown format name or inconsistent fields.
        """
        if name not in FORMATS:
            raise ConfigError(
                "unknown PRM input format",
                got=name,
                expected=f"one of {sorted(FORMATS)}",
                fix="pick a listed format, or give step_tag etc. explicitly",
            )
        data = {**FORMATS[name], "head": head, **overrides}
        if head == "labeltok" and data.get("label_tokens") is None:
            data["label_tokens"] = ["+", "-"]
        return cls.from_dict(data)


def save_spec(spec: PRMSpec, directory: str | os.PathLike[str]) -> Path:
    """Write ``prm_spec.json`` into ``directory`` (atomically); return its path."""
    path = Path(directory) / SPEC_FILE
    write_json(path, spec.to_dict())
    return path


def load_spec(directory: str | os.PathLike[str]) -> PRMSpec:
    """Read ``prm_spec.json`` from a checkpoint directory.

    Raises:
        ModelLoadError: no spec file there.
        ConfigError: the spec is invalid.
    """
    path = Path(directory) / SPEC_FILE
    if not path.exists():
        raise ModelLoadError(
            "checkpoint has no prm_spec.json",
            got=str(directory),
            expected=f"a directory containing {SPEC_FILE}",
            fix="train with `prmkit train`, or write a PRMSpec for this model "
            "with prmkit.prm.save_spec",
        )
    return PRMSpec.from_dict(read_json(path), where=str(path))
