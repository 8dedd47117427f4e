"""Request and response models of every route (pydantic), so /openapi.json and /docs show them.

Three route families:

* ``POST /v1/score`` (prmkit's own): :class:`ScoreRequest` -> :class:`ScoreResponse`.
* ``POST /pooling`` (vLLM's pooling API, ``token_classify`` with a STEP pooler):
  :class:`PoolingRequest` -> :class:`PoolingResponse`.
* ``POST /get_reward`` (OpenRLHF's remote reward model): :class:`RewardRequest` ->
  :class:`RewardResponse`.

prmkit's own request models refuse unknown keys; the two compatibility routes ignore keys they do
not know (as vLLM and OpenRLHF do), but refuse values of known keys they cannot honour.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Aggregates",
    "ErrorDetail",
    "ErrorResponse",
    "HealthResponse",
    "ModelCard",
    "ModelList",
    "PoolingData",
    "PoolingRequest",
    "PoolingResponse",
    "RewardRequest",
    "RewardResponse",
    "ScoreRequest",
    "ScoreResponse",
    "ScoredTraceOut",
    "TraceIn",
    "Usage",
]

Aggregation = Literal["min", "prod", "last", "mean"]
Kind = Literal["probability", "reward"]


class ErrorDetail(BaseModel):
    """What went wrong."""

    message: str = Field(description="what went wrong and how to fix it")
    type: str = Field(description="e.g. invalid_request_error, rate_limit_error, server_error")
    param: str | None = Field(None, description="the request field at fault, if any")
    code: int = Field(description="the HTTP status")


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


class TraceIn(BaseModel):
    """One trace: a prompt and either its steps or its whole response text."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(description="the problem, as the PRM reads it")
    steps: list[str] | None = Field(None, description="the solution's steps")
    text: str | None = Field(
        None, description="the whole response; split with the PRM spec's segmentation"
    )

    @model_validator(mode="after")
    def _steps_or_text(self) -> TraceIn:
        if (self.steps is None) == (self.text is None):
            raise ValueError("give exactly one of 'steps' (a list of strings) or 'text'")
        return self


class ScoreRequest(BaseModel):
    """One trace (``prompt`` with ``steps`` or ``text``) or a batch (``traces``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"prompt": "What is 2+3?", "steps": ["2 + 3 = 5.", "The answer is 5."]},
                {"prompt": "What is 2+3?", "text": "2 + 3 = 5.\n\nThe answer is 5."},
                {
                    "traces": [
                        {"prompt": "What is 2+3?", "steps": ["2 + 3 = 5."]},
                        {"prompt": "What is 2+4?", "text": "2 + 4 = 7.\n\nSo 7."},
                    ],
                    "aggregation": "min",
                },
            ]
        },
    )

    model: str | None = Field(None, description="the served model name (checked when given)")
    prompt: str | None = Field(None, description="one trace: the problem")
    steps: list[str] | None = Field(None, description="one trace: its steps")
    text: str | None = Field(None, description="one trace: its whole response text")
    traces: list[TraceIn] | None = Field(None, description="a batch of traces")
    aggregation: Aggregation | None = Field(
        None, description="the aggregation of 'score' (default: the PRM spec's)"
    )

    @model_validator(mode="after")
    def _one_or_batch(self) -> ScoreRequest:
        single = [k for k in ("prompt", "steps", "text") if getattr(self, k) is not None]
        if self.traces is not None:
            if single:
                raise ValueError(
                    f"give either 'traces' or one trace's fields, not both (got {single})"
                )
            return self
        if self.prompt is None:
            raise ValueError("give 'prompt' with 'steps' or 'text', or a batch as 'traces'")
        if (self.steps is None) == (self.text is None):
            raise ValueError("give exactly one of 'steps' (a list of strings) or 'text'")
        return self

    def trace_inputs(self) -> list[TraceIn]:
        """The traces of the request, one or many."""
        if self.traces is not None:
            return list(self.traces)
        return [TraceIn(prompt=self.prompt or "", steps=self.steps, text=self.text)]


class Aggregates(BaseModel):
    """Every aggregation of a trace's step scores."""

    min: float
    prod: float
    last: float
    mean: float


class ScoredTraceOut(BaseModel):
    """One trace's scores."""

    step_scores: list[float] = Field(description="one score per step, in order")
    aggregates: Aggregates
    score: float = Field(description="the aggregate the request (or the spec) chose")
    steps: list[str] = Field(description="the steps scored (the split of 'text', if given)")


class Usage(BaseModel):
    """Tokens that went through the model."""

    prompt_tokens: int
    total_tokens: int
    completion_tokens: int = 0


class ScoreResponse(BaseModel):
    """The scores of every trace of a ``/v1/score`` request, in order."""

    object: Literal["prmkit.score"] = "prmkit.score"
    model: str
    kind: Kind = Field(
        description="probability: step scores in [0, 1]; reward: an implicit PRM's per-step "
        "rewards (beta * log-ratio), any real number"
    )
    aggregation: Aggregation
    traces: list[ScoredTraceOut]
    usage: Usage


class PoolingRequest(BaseModel):
    """vLLM's ``/pooling`` request (completion form ``input`` or chat form ``messages``)."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "model": "prm",
                    "input": "What is 2+3? 2 + 3 = 5.<extra_0>The answer is 5.<extra_0>",
                    "task": "token_classify",
                    "encoding_format": "float",
                }
            ]
        },
    )

    model: str | None = Field(None, description="the served model name (checked when given)")
    input: str | list[str] | list[int] | list[list[int]] | None = Field(
        None, description="text(s) that already contain the PRM's step tag after every step"
    )
    messages: list[dict[str, Any]] | None = Field(
        None, description="chat form: rendered with the tokenizer's chat template"
    )
    task: str | None = Field(None, description="'token_classify' (or absent)")
    encoding_format: str = Field("float", description="'float' only")
    add_special_tokens: bool | None = Field(
        None,
        description="let the tokenizer add its special tokens (default: the PRM spec's "
        "add_special_tokens for 'input', false for 'messages', as vLLM)",
    )
    add_generation_prompt: bool = Field(False, description="chat form: as vLLM")
    use_activation: bool | None = Field(None, description="true or absent (probabilities)")
    truncate_prompt_tokens: int | None = Field(None, description="not supported (absent or -1)")

    @model_validator(mode="after")
    def _input_or_messages(self) -> PoolingRequest:
        if (self.input is None) == (self.messages is None):
            raise ValueError("give exactly one of 'input' (text) or 'messages' (chat)")
        return self


class PoolingData(BaseModel):
    """One input's rows: ``[p_class0, p_class1]`` at each step tag."""

    index: int
    object: Literal["pooling"] = "pooling"
    data: list[list[float]]


class PoolingResponse(BaseModel):
    """vLLM's pooling response."""

    id: str
    object: Literal["list"] = "list"
    created: int
    model: str
    data: list[PoolingData]
    usage: Usage


class RewardRequest(BaseModel):
    """OpenRLHF's remote reward model request: ``query[i] = prompts[i] + response``."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "query": ["What is 2+3? 2 + 3 = 5.\n\nThe answer is 5."],
                    "prompts": ["What is 2+3? "],
                    "labels": ["5"],
                }
            ]
        },
    )

    query: list[str] = Field(description="prompt + response, one per sample")
    prompts: list[str] = Field(description="the prompt each query starts with")
    labels: list[Any] | None = Field(None, description="accepted and ignored")


class RewardResponse(BaseModel):
    """OpenRLHF's remote reward model response (``rewards`` and ``scores`` are equal)."""

    rewards: list[float]
    scores: list[float]
    extra_logs: dict[str, list[float]] = Field(
        description="per query: prm_min, prm_prod, prm_last, prm_mean, prm_steps"
    )


class HealthResponse(BaseModel):
    """``GET /health``: the model is loaded and the server answers."""

    status: Literal["ok"] = "ok"
    model: str
    head: str
    kind: Kind
    aggregation: Aggregation
    pooling_positive_index: int | None = Field(
        description="the column of /pooling rows holding P(step correct); null when /pooling "
        "does not serve this head"
    )


class ModelCard(BaseModel):
    """One served model."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "prmkit"


class ModelList(BaseModel):
    """``GET /v1/models``."""

    object: Literal["list"] = "list"
    data: list[ModelCard]
