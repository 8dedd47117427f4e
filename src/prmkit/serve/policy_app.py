"""The policy server app: OpenAI's ``/v1/completions`` and ``/v1/chat/completions`` over an
in-process :class:`~prmkit.generate.transformers_backend.TransformersGenerator`.

What a request may ask for is what the transformers backend honours: ``n``, ``max_tokens``
(``max_completion_tokens`` on chat), ``temperature`` (0 = greedy), ``top_p``, ``top_k`` (vLLM's
extension), ``seed``, ``stop`` (strings, cut from the text like OpenAI), ``ignore_eos`` (vLLM),
``logprobs`` (``top_logprobs`` on chat) and, on chat, vLLM's ``continue_final_message`` /
``add_generation_prompt``. Anything else that would change the output (``stream``, penalties,
``logit_bias``, ``echo``, ``best_of`` != ``n``, ``suffix``, tools, ``response_format``, an unknown
field) answers 400 in the ``{"error": {...}}`` shape; nothing is silently ignored.

How a request runs: one at a time, in one worker thread (no batching across requests; at most
``max_queue`` wait, more answer 429). Within a request the backend encodes each prompt once and
reuses its KV cache for all ``n`` samples (``share_prefix``); nothing is cached across requests.
Sample ``j`` of prompt ``i`` of a request seeded ``s`` draws from its own stream
(``row_seed(s, i, j)``), so a seeded request always returns the same choices.

Logprobs are those of the model's raw distribution (before temperature, top-p and top-k, like
vLLM's default), computed by one teacher-forced forward pass per returned sample; there is one
entry per sampled token, the end token and the token that completed a stop string included (as
``usage.completion_tokens`` counts them).

Example:
    >>> gen = TransformersGenerator.from_pretrained("smollm2")  # doctest: +SKIP
    >>> app = create_policy_app(gen, PolicyServeConfig())  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from prmkit.generate.chat import encode_text, separator_ids
from prmkit.generate.protocol import SamplingParams, StopAt
from prmkit.generate.transformers_backend import Generated, TransformersGenerator
from prmkit.serve.errors import ApiError
from prmkit.serve.http import Guard, check_model_name, install_error_handlers
from prmkit.serve.metrics import CONTENT_TYPE, Metrics
from prmkit.serve.policy_config import PolicyServeConfig
from prmkit.serve.schemas import ErrorResponse, ModelCard, ModelList

__all__ = ["StopStringGenerator", "create_policy_app"]

log = logging.getLogger("prmkit.serve.policy")

_ROUTES = (
    "POST /v1/completions, POST /v1/chat/completions, GET /v1/models, GET /health, "
    "GET /metrics, GET /openapi.json, GET /docs"
)
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in (
        (400, "malformed JSON, or a parameter this server cannot honour"),
        (401, "missing or wrong bearer token"),
        (404, "another model name"),
        (413, "body, prompts, n or max_tokens beyond the server's limits"),
        (422, "a field of the wrong type, or a missing field"),
        (429, "too many requests waiting; retry after Retry-After seconds"),
        (500, "generation failed"),
    )
}


class StopStringGenerator(TransformersGenerator):
    """A :class:`TransformersGenerator` that also ends a sample at any of ``stop_strings``.

    The sample's text is cut before the first stop string (OpenAI's semantics); its tokens keep
    the one that completed it. Pass ``stop_strings`` to :meth:`generate_ids` (the server's one
    worker thread does, per request).
    """

    _stops: tuple[str, ...] = ()
    _window = 0  # tokens whose text holds any stop string that the newest token completes

    def generate_ids(
        self,
        prompt_ids: Sequence[Sequence[int]],
        n: int,
        params: SamplingParams,
        stop: StopAt = "solution",
        *,
        stop_strings: Sequence[str] = (),
    ) -> list[list[Generated]]:
        """As :meth:`TransformersGenerator.generate_ids`, also ending samples at ``stop_strings``."""
        self._stops = tuple(stop_strings)
        # a char is at most 4 tokens (byte tokens); 2 more absorb a window start that decodes
        # differently from the same tokens mid-text (a stripped leading space, a split char)
        self._window = 4 * max(map(len, self._stops), default=0) + 2
        try:
            return super().generate_ids(prompt_ids, n, params, stop)
        finally:
            self._stops, self._window = (), 0

    def _advance(self, row: Any, token: int, params: SamplingParams, stop: StopAt) -> None:
        super()._advance(row, token, params, stop)
        if not self._stops or (row.done and row.finish == "eos"):
            return
        if row.done:
            text = row.text
        else:
            # A stop string the newest token completes lies in the last few tokens' text;
            # decode the whole row only when one (or a U+FFFD: byte-fallback decoders give
            # one for each byte of a run the window cuts) shows there.
            text = self._decode_text(row.tokens[-self._window :])
            if len(row.tokens) > self._window:
                if "\ufffd" not in text and _first_stop(text, self._stops) is None:
                    return
                text = self._decode_text(row.tokens)
        cut = _first_stop(text, self._stops)
        if cut is not None:
            row.done, row.finish, row.text = True, "stop", text[:cut]


def _first_stop(text: str, stops: Sequence[str]) -> int | None:
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(found) if found else None


# -- requests ------------------------------------------------------------------------------


class _Sampling(BaseModel):
    """The fields both routes share. Unknown fields are kept (``extra``) to be refused."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    n: int = 1
    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int | None = Field(None, description="vLLM's extension; 0 or -1 = off")
    seed: int | None = None
    stop: str | list[str] | None = None
    ignore_eos: bool = False
    stream: bool = False
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: dict[str, float] | None = None
    user: str | None = None


class CompletionRequest(_Sampling):
    """``POST /v1/completions``: a prompt as text or token ids (or a list of them)."""

    prompt: str | list[int] | list[str] | list[list[int]]
    logprobs: int | None = None
    echo: bool = False
    best_of: int | None = None
    suffix: str | None = None


class ChatRequest(_Sampling):
    """``POST /v1/chat/completions``: messages rendered with the model's chat template."""

    messages: list[dict[str, Any]]
    max_completion_tokens: int | None = None
    logprobs: bool = False
    top_logprobs: int | None = None
    add_generation_prompt: bool = True
    continue_final_message: bool = False


class _Job:
    """A checked request: token ids of each prompt, sampling, stop strings, logprobs."""

    def __init__(
        self,
        prompts: list[list[int]],
        n: int,
        params: SamplingParams,
        stops: tuple[str, ...],
        logprobs: int | None,
    ) -> None:
        self.prompts, self.n, self.params = prompts, n, params
        self.stops, self.logprobs = stops, logprobs


def _check_sampling(
    body: _Sampling, cfg: PolicyServeConfig, *, max_tokens: int | None, context: int | None
) -> tuple[int, SamplingParams, tuple[str, ...]]:
    extra = {k: v for k, v in (body.model_extra or {}).items() if v is not None}
    if extra:
        key = sorted(extra)[0]
        raise ApiError(
            400,
            f"parameter {key!r} is not supported by this server (prmkit serve-policy honours "
            "n, max_tokens, temperature, top_p, top_k, seed, stop, ignore_eos, logprobs)",
            param=key,
        )
    refused = [
        ("stream", body.stream, "streaming is not supported; send stream=false"),
        ("presence_penalty", body.presence_penalty != 0, "penalties are not supported"),
        ("frequency_penalty", body.frequency_penalty != 0, "penalties are not supported"),
        ("logit_bias", bool(body.logit_bias), "logit_bias is not supported"),
    ]
    for param, bad, why in refused:
        if bad:
            raise ApiError(400, why, param=param)
    n = body.n
    if n < 1:
        raise ApiError(400, f"n must be >= 1, got {n}", param="n")
    if n > cfg.max_n:
        raise ApiError(413, f"n={n}; this server takes at most {cfg.max_n} (max_n)", param="n")
    tokens = cfg.default_max_tokens if max_tokens is None else max_tokens
    if tokens < 1:
        raise ApiError(400, f"max_tokens must be >= 1, got {tokens}", param="max_tokens")
    if tokens > cfg.max_tokens_limit:
        raise ApiError(
            413,
            f"max_tokens={tokens}; this server takes at most {cfg.max_tokens_limit} "
            "(max_tokens_limit)",
            param="max_tokens",
        )
    if context is not None and tokens > context:
        raise ApiError(
            400, f"max_tokens={tokens} exceeds the model's context of {context}", param="max_tokens"
        )
    if body.temperature < 0:
        raise ApiError(
            400, f"temperature must be >= 0, got {body.temperature}", param="temperature"
        )
    if not 0 < body.top_p <= 1:
        raise ApiError(400, f"top_p must be in (0, 1], got {body.top_p}", param="top_p")
    top_k = body.top_k or 0
    if top_k == -1:
        top_k = 0
    if top_k < 0:
        raise ApiError(400, f"top_k must be >= 1, or 0 / -1 for off; got {top_k}", param="top_k")
    if body.seed is not None and body.seed < 0:
        raise ApiError(400, f"seed must be >= 0, got {body.seed}", param="seed")
    stops = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
    if any(not s for s in stops):
        raise ApiError(400, "stop strings must not be empty", param="stop")
    if len(stops) > 16:
        raise ApiError(400, f"{len(stops)} stop strings; at most 16", param="stop")
    params = SamplingParams(
        temperature=body.temperature,
        top_p=body.top_p,
        top_k=top_k,
        max_new_tokens=tokens,
        seed=body.seed,
        ignore_eos=body.ignore_eos,
    )
    return n, params, stops


def _check_logprobs(k: int | None, cfg: PolicyServeConfig, param: str) -> None:
    if k is not None and not 0 <= k <= cfg.max_logprobs:
        raise ApiError(
            400, f"{param} must be in [0, {cfg.max_logprobs}] (max_logprobs), got {k}", param=param
        )


# -- the app -------------------------------------------------------------------------------


def create_policy_app(
    generator: TransformersGenerator, cfg: PolicyServeConfig | None = None
) -> Any:
    """The policy server app for a loaded generator.

    Args:
        generator: The policy (a :class:`StopStringGenerator` is built on its model and
            tokenizer, with ``share_prefix`` on and ``cfg.batch_size`` rows per decode chunk).
        cfg: Limits, auth and the served name (default: ``PolicyServeConfig()``).

    Returns:
        A FastAPI app; run it with uvicorn (or :func:`prmkit.serve.policy_run.serve_policy`).
    """
    cfg = cfg if cfg is not None else PolicyServeConfig()
    gen = StopStringGenerator(
        generator.model,
        generator.tokenizer,
        batch_size=cfg.batch_size,
        prefill_batch_size=generator.prefill_batch_size,
        share_prefix=True,
        eos_token_ids=sorted(generator.eos_token_ids),
        preallocate=generator.preallocate,
    )
    tokenizer = gen.tokenizer
    sep_ids = separator_ids(tokenizer)
    vocab = len(tokenizer)
    context = getattr(gen.model.config, "max_position_embeddings", None)
    name = cfg.served_name()
    metrics = Metrics()
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prmkit-policy")
    pending = 0

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        try:
            yield
        finally:
            worker.shutdown(wait=True)

    app = FastAPI(
        title="prmkit serve-policy",
        description=(
            f"Policy {name!r}: OpenAI-compatible completions over transformers. "
            'Errors answer {"error": {"message", "type", "param", "code"}}.'
        ),
        lifespan=lifespan,
    )
    app.add_middleware(
        Guard, api_key=cfg.resolved_api_key(), max_body_bytes=cfg.max_body_bytes, metrics=metrics
    )
    app.state.served_name = name
    app.state.generator = gen

    install_error_handlers(app, _ROUTES)

    def check_ids(ids: list[int], param: str, n_tokens: int) -> None:
        if not ids:
            raise ApiError(400, "the prompt is empty", param=param)
        if any(not 0 <= t < vocab for t in ids):
            raise ApiError(400, f"token ids must be in [0, {vocab})", param=param)
        if context is not None and len(ids) + n_tokens > context:
            raise ApiError(
                400,
                f"{len(ids)} prompt tokens + max_tokens={n_tokens} exceed the model's context "
                f"of {context}",
                param=param,
            )

    async def run(job: _Job) -> tuple[list[list[Generated]], list[list[Any]]]:
        nonlocal pending
        if pending >= cfg.max_queue:
            raise ApiError(
                429,
                f"the server is busy ({pending} requests waiting, max_queue={cfg.max_queue}); "
                "retry after the Retry-After seconds",
                headers={"Retry-After": "1"},
            )
        pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(worker, _generate, gen, job)
        finally:
            pending -= 1

    def usage(job: _Job, out: list[list[Generated]]) -> dict[str, int]:
        prompt = sum(len(p) for p in job.prompts)
        completion = sum(len(g.token_ids) for group in out for g in group)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    @app.post(
        "/v1/completions",
        responses=_ERRORS,
        summary="OpenAI's completions API (prompt as text or token ids)",
    )
    async def completions(body: CompletionRequest) -> dict[str, Any]:
        check_model_name(body.model, name)
        n, params, stops = _check_sampling(body, cfg, max_tokens=body.max_tokens, context=context)
        if body.echo:
            raise ApiError(400, "echo is not supported", param="echo")
        if body.suffix:
            raise ApiError(400, "suffix (insertion) is not supported", param="suffix")
        if body.best_of is not None and body.best_of != n:
            raise ApiError(
                400, "best_of is not supported (leave it out or equal to n)", param="best_of"
            )
        _check_logprobs(body.logprobs, cfg, "logprobs")
        prompt = body.prompt
        if isinstance(prompt, str) or (prompt and isinstance(prompt[0], int)):
            items: list[Any] = [prompt]
            params_at = ["prompt"]
        else:
            items = list(prompt)
            params_at = [f"prompt[{i}]" for i in range(len(items))]
        if not items:
            raise ApiError(400, "no prompt", param="prompt")
        if len(items) > cfg.max_prompts_per_request:
            raise ApiError(
                413,
                f"{len(items)} prompts; this server takes at most {cfg.max_prompts_per_request} "
                "(max_prompts_per_request); split the request",
                param="prompt",
            )
        ids_all = []
        for item, at in zip(items, params_at, strict=True):
            ids = tokenizer.encode(item) if isinstance(item, str) else list(item)
            check_ids(ids, at, params.max_new_tokens)
            ids_all.append(ids)
        job = _Job(ids_all, n, params, stops, body.logprobs)
        out, lps = await run(job)
        choices = []
        for i, group in enumerate(out):
            for j, g in enumerate(group):
                choices.append(
                    {
                        "index": i * n + j,
                        "text": g.text,
                        "logprobs": _completion_logprobs(tokenizer, lps[i][j])
                        if job.logprobs is not None
                        else None,
                        "finish_reason": "length" if g.finish_reason == "length" else "stop",
                        "stop_reason": _stop_reason(tokenizer, g, stops),
                    }
                )
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": name,
            "choices": choices,
            "usage": usage(job, out),
        }

    @app.post(
        "/v1/chat/completions",
        responses=_ERRORS,
        summary="OpenAI's chat completions API (the model's chat template)",
    )
    async def chat_completions(body: ChatRequest) -> dict[str, Any]:
        check_model_name(body.model, name)
        if body.max_tokens is not None and body.max_completion_tokens is not None:
            raise ApiError(
                400,
                "give max_tokens or max_completion_tokens, not both",
                param="max_completion_tokens",
            )
        wanted = body.max_completion_tokens if body.max_tokens is None else body.max_tokens
        n, params, stops = _check_sampling(body, cfg, max_tokens=wanted, context=context)
        if body.top_logprobs is not None and not body.logprobs:
            raise ApiError(400, "top_logprobs needs logprobs=true", param="top_logprobs")
        _check_logprobs(body.top_logprobs, cfg, "top_logprobs")
        ids = _chat_ids(tokenizer, body, sep_ids)
        check_ids(ids, "messages", params.max_new_tokens)
        job = _Job([ids], n, params, stops, (body.top_logprobs or 0) if body.logprobs else None)
        out, lps = await run(job)
        choices = [
            {
                "index": j,
                "message": {"role": "assistant", "content": g.text},
                "logprobs": _chat_logprobs(tokenizer, lps[0][j])
                if job.logprobs is not None
                else None,
                "finish_reason": "length" if g.finish_reason == "length" else "stop",
                "stop_reason": _stop_reason(tokenizer, g, stops),
            }
            for j, g in enumerate(out[0])
        ]
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": name,
            "choices": choices,
            "usage": usage(job, out),
        }

    @app.get("/health", summary="200 once the model is loaded")
    async def health() -> dict[str, str]:
        return {"status": "ok", "model": name}

    created = int(time.time())

    @app.get("/v1/models", response_model=ModelList, summary="The served model")
    async def models() -> ModelList:
        return ModelList(data=[ModelCard(id=name, created=created)])

    @app.get("/metrics", summary="Prometheus metrics (requests, latency)", response_class=Response)
    async def metrics_route() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return app


# -- the worker ----------------------------------------------------------------------------


def _generate(gen: StopStringGenerator, job: _Job) -> tuple[list[list[Generated]], list[list[Any]]]:
    """Sample (in the worker thread), then the logprobs of each sample when asked."""
    out = gen.generate_ids(job.prompts, job.n, job.params, stop="solution", stop_strings=job.stops)
    if job.logprobs is None:
        return out, [[None] * len(group) for group in out]
    lps = [
        [_token_logprobs(gen.model, prompt, g.token_ids, job.logprobs) for g in group]
        for prompt, group in zip(job.prompts, out, strict=True)
    ]
    return out, lps


def _token_logprobs(
    model: Any, prompt: list[int], tokens: list[int], top: int
) -> list[tuple[int, float, list[tuple[int, float]]]]:
    """``(token, logprob, [(alt, logprob), ...top])`` of each sampled token (raw model)."""
    import torch

    if not tokens:
        return []
    with torch.inference_mode():
        ids = torch.tensor([prompt + tokens], device=model.device)
        logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1].float()  # (len, vocab)
        lp = torch.log_softmax(logits, dim=-1)
        chosen = lp.gather(1, torch.tensor(tokens, device=lp.device).unsqueeze(1)).squeeze(1)
        alts = torch.topk(lp, top, dim=-1) if top > 0 else None
    out = []
    for k, token in enumerate(tokens):
        pairs = (
            list(zip(alts.indices[k].tolist(), alts.values[k].tolist(), strict=True))
            if alts is not None
            else []
        )
        out.append((token, float(chosen[k]), pairs))
    return out


def _text(tokenizer: Any, token: int) -> str:
    return tokenizer.decode([token], skip_special_tokens=False, clean_up_tokenization_spaces=False)


def _completion_logprobs(tokenizer: Any, rows: list[Any]) -> dict[str, Any]:
    texts = [_text(tokenizer, t) for t, _, _ in rows]
    offsets, at = [], 0
    for text in texts:
        offsets.append(at)
        at += len(text)
    return {
        "tokens": texts,
        "token_logprobs": [lp for _, lp, _ in rows],
        "top_logprobs": [{_text(tokenizer, a): v for a, v in alts} for _, _, alts in rows],
        "text_offset": offsets,
    }


def _chat_logprobs(tokenizer: Any, rows: list[Any]) -> dict[str, Any]:
    def entry(token: int, lp: float) -> dict[str, Any]:
        text = _text(tokenizer, token)
        return {"token": text, "logprob": lp, "bytes": list(text.encode("utf-8"))}

    return {
        "content": [
            {**entry(t, lp), "top_logprobs": [entry(a, v) for a, v in alts]} for t, lp, alts in rows
        ]
    }


def _stop_reason(tokenizer: Any, g: Generated, stops: Sequence[str]) -> str | None:
    """vLLM's ``stop_reason``: the stop string that matched, else ``None`` (EOS or length)."""
    if g.finish_reason != "stop":
        return None
    full = tokenizer.decode(
        g.token_ids, skip_special_tokens=False, clean_up_tokenization_spaces=False
    )
    return next((s for s in stops if full.startswith(s, len(g.text))), None)


def _message_text(message: dict[str, Any], k: int) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        for p in content
    ):
        return "".join(p["text"] for p in content)
    raise ApiError(
        400,
        "only text content is supported (a string or text parts)",
        param=f"messages[{k}].content",
    )


def _chat_ids(tokenizer: Any, body: ChatRequest, sep_ids: list[int]) -> list[int]:
    """Token ids of the messages through the chat template (vLLM's rendering options).

    With ``continue_final_message`` the final assistant message is continued in place: the
    earlier messages with the generation prompt, then its text; a text ending in the step
    separator gets the separator's in-text token ids ``sep_ids`` (as
    :func:`~prmkit.generate.chat.encode_text` builds them for
    :func:`~prmkit.generate.chat.encode_prefix`), so a prefix tokenizes as the in-process backend
    feeds it.
    """
    if not body.messages:
        raise ApiError(400, "no messages", param="messages")
    messages = []
    for k, m in enumerate(body.messages):
        role = m.get("role")
        if role not in ("system", "user", "assistant"):
            raise ApiError(
                400,
                f"role {role!r} is not supported (system, user, assistant)",
                param=f"messages[{k}]",
            )
        messages.append({"role": role, "content": _message_text(m, k)})
    if not getattr(tokenizer, "chat_template", None):
        raise ApiError(
            400, "the served model's tokenizer has no chat template; use /v1/completions"
        )
    continued: str | None = None
    if body.continue_final_message:
        if body.add_generation_prompt:
            raise ApiError(
                400,
                "continue_final_message needs add_generation_prompt=false",
                param="add_generation_prompt",
            )
        if messages[-1]["role"] != "assistant":
            raise ApiError(
                400, "continue_final_message needs a final assistant message", param="messages"
            )
        continued = messages.pop()["content"]
    try:
        head = tokenizer.apply_chat_template(
            messages,
            tokenize=False,
            add_generation_prompt=body.add_generation_prompt or continued is not None,
        )
    except Exception as exc:  # a template error is the request's
        raise ApiError(
            400, f"the messages cannot be rendered with the chat template ({exc})", param="messages"
        ) from None
    if continued is not None:
        return encode_text(tokenizer, head + continued, sep_ids)
    return tokenizer.encode(head, add_special_tokens=False)
