"""The FastAPI app: thin routes over one :class:`~prmkit.serve.batcher.Batcher`.

:func:`create_app` takes a loaded :class:`~prmkit.score.PRMScorer` (in memory: tests build one
from a tiny model) and a :class:`~prmkit.serve.config.ServeConfig`; :func:`prmkit.serve.serve`
loads the checkpoint and runs it under uvicorn. The model's lifetime is the app's lifespan: the
batcher and its worker thread start with the app and stop with it.

Routes: ``POST /v1/score`` (prmkit's own), ``POST /pooling`` (vLLM's pooling API),
``POST /get_reward`` (OpenRLHF's remote reward model), ``GET /health``, ``GET /metrics``
(Prometheus), ``GET /v1/models``, and the OpenAPI schema at ``/openapi.json`` and ``/docs``.
Every route but ``/health`` requires the bearer token when one is set. Errors always answer
``{"error": {"message", "type", "param", "code"}}``; a failure is never a made-up score.

Example:
    >>> from prmkit.score import PRMScorer
    >>> app = create_app(PRMScorer(prm), ServeConfig(max_wait_ms=5))  # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8000)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from prmkit.errors import PrmkitError
from prmkit.prm.formats import Encoded
from prmkit.prm.spec import AGGREGATIONS
from prmkit.records import Trace
from prmkit.score.aggregate import aggregate_all
from prmkit.score.scorer import PRMScorer
from prmkit.serve.batcher import Batcher, BatchStats, ClientGone, QueueFull, ScoringFailed
from prmkit.serve.config import ServeConfig
from prmkit.serve.errors import ApiError
from prmkit.serve.http import (
    Guard,
    check_model_name,
    install_error_handlers,
)
from prmkit.serve.inputs import (
    check_count,
    pooling_encoded,
    pooling_positive_index,
    pooling_refusal,
    pooling_rows,
    reward_traces,
    score_traces,
)
from prmkit.serve.metrics import CONTENT_TYPE, Metrics
from prmkit.serve.schemas import (
    Aggregates,
    ErrorResponse,
    HealthResponse,
    ModelCard,
    ModelList,
    PoolingData,
    PoolingRequest,
    PoolingResponse,
    RewardRequest,
    RewardResponse,
    ScoredTraceOut,
    ScoreRequest,
    ScoreResponse,
    Usage,
)

__all__ = ["create_app"]

log = logging.getLogger("prmkit.serve")

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in (
        (400, "malformed JSON or an input the PRM cannot read"),
        (401, "missing or wrong bearer token"),
        (404, "another model name"),
        (413, "body, traces, steps or inputs beyond the server's limits"),
        (422, "a field of the wrong type, or a missing field"),
        (429, "the queue is full; retry after Retry-After seconds"),
        (500, "the forward pass failed; no score is returned"),
        (504, "no scores within request_timeout_s"),
    )
}


async def _client_gone(request: Request) -> None:
    """Completes when the client disconnects (the body has been read by then)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def _served_name(scorer: PRMScorer, cfg: ServeConfig) -> str:
    if cfg.model_name or cfg.prm:
        return cfg.served_name()
    source = getattr(scorer.prm, "source", "") or ""
    return Path(source).name if source else "prm"


def create_app(scorer: PRMScorer, cfg: ServeConfig | None = None) -> Any:
    """The server app for a loaded PRM.

    The forward passes run through a new :class:`~prmkit.score.PRMScorer` on ``scorer.prm``
    whose batch limits are ``cfg``'s (``max_batch_traces``, ``max_batch_tokens``), so one batch
    of the batcher is one forward pass; ``scorer``'s ``packing`` and ``row_tokens`` are kept.

    Args:
        scorer: The PRM to serve.
        cfg: Limits, batching, auth and the served name (default: ``ServeConfig()``; the name
            is then the PRM's source folder name, or ``prm``).

    Returns:
        A FastAPI app; run it with uvicorn (or :func:`prmkit.serve.serve`).
    """
    cfg = cfg if cfg is not None else ServeConfig()
    prm = scorer.prm
    spec = prm.spec
    name = _served_name(scorer, cfg)
    kind = "reward" if spec.head == "implicit" else "probability"
    refusal = pooling_refusal(spec)  # both depend on the spec only
    positive_index = pooling_positive_index(spec)
    engine = PRMScorer(
        prm,
        batch_size=cfg.max_batch_traces,
        max_batch_tokens=cfg.max_batch_tokens,
        packing=scorer.packing,
        row_tokens=scorer.row_tokens,
    )
    metrics = Metrics()

    def on_batch(stats: BatchStats) -> None:
        metrics.batch_traces.observe(stats.traces)
        metrics.batch_tokens.observe(stats.tokens)
        metrics.batch_seconds.observe(stats.seconds)
        metrics.traces.inc(stats.traces)
        metrics.tokens.inc(stats.tokens)

    batcher = Batcher(
        engine.score_encoded,
        max_batch_traces=cfg.max_batch_traces,
        max_batch_tokens=cfg.max_batch_tokens,
        max_wait_ms=cfg.max_wait_ms,
        max_queue=cfg.max_queue,
        padded=not engine.uses_packing(),
        on_batch=on_batch,
        on_queue=metrics.queue.set,
    )
    tokenizing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prmkit-tokenize")

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()
            tokenizing.shutdown(wait=False)

    app = FastAPI(
        title="prmkit serve",
        description=(
            f"Process reward model {name!r} ({spec.head} head): step scores over HTTP. "
            'Errors answer {"error": {"message", "type", "param", "code"}}.'
        ),
        lifespan=lifespan,
    )
    app.add_middleware(
        Guard,
        api_key=cfg.resolved_api_key(),
        max_body_bytes=cfg.max_body_bytes,
        metrics=metrics,
    )
    app.state.batcher = batcher
    app.state.served_name = name
    app.state.metrics = metrics

    install_error_handlers(
        app,
        "POST /v1/score, POST /pooling, POST /get_reward, GET /health, GET /metrics, "
        "GET /v1/models, GET /openapi.json, GET /docs",
    )

    def check_batch(n: int, noun: str, param: str) -> None:
        if n == 0:
            raise ApiError(400, f"no {noun} to score", param=param)
        check_count(n, cfg.max_traces_per_request, noun, "max_traces_per_request", param)

    async def off_loop(fn: Callable[[], Any]) -> Any:
        """Run tokenization in its own thread, off the event loop and the model's thread."""
        return await asyncio.get_running_loop().run_in_executor(tokenizing, fn)

    def encode_all(traces: Sequence[Trace], params: Sequence[str | None]) -> list[Encoded]:
        out = []
        for trace, param in zip(traces, params, strict=True):
            try:
                out.append(engine.encode(trace))
            except PrmkitError as exc:
                raise ApiError(400, str(exc), param=param) from None
        return out

    async def scores_of(
        encs: Sequence[Encoded], params: Sequence[str | None], request: Request
    ) -> list[list[float]]:
        """The step scores of ``encs`` through the batcher, checked; errors as responses."""
        try:
            scores = await batcher.score(
                encs, timeout=cfg.request_timeout_s, cancel=lambda: _client_gone(request)
            )
        except QueueFull as exc:
            raise ApiError(
                429,
                f"the server is busy ({exc}); retry after the Retry-After seconds",
                headers={"Retry-After": "1"},
            ) from None
        except TimeoutError:
            raise ApiError(
                504,
                f"no scores within request_timeout_s={cfg.request_timeout_s:g} s (queue and "
                "forward pass); retry, or send fewer traces per request",
            ) from None
        except ClientGone:
            raise ApiError(499, "the client closed the connection") from None
        except ScoringFailed as exc:
            log.error("forward pass failed", exc_info=exc.__cause__ or exc)
            raise ApiError(500, f"the forward pass failed ({exc}); no score is returned") from None
        for s, e, param in zip(scores, encs, params, strict=True):
            where = f"{param}: " if param else ""
            bad = [v for v in s if not math.isfinite(v)]
            if len(s) != e.n_steps:
                problem = f"{len(s)} step values for {e.n_steps} steps"
            elif bad:
                problem = f"a non-finite step value ({bad[0]})"
            else:
                continue
            raise ApiError(
                500, f"{where}the model gave {problem}; no score is returned", param=param
            )
        metrics.steps.inc(sum(len(s) for s in scores))
        return scores

    @app.post(
        "/v1/score",
        response_model=ScoreResponse,
        responses=_ERRORS,
        summary="Score the steps of one trace or a batch (prmkit's own API)",
    )
    async def v1_score(body: ScoreRequest, request: Request) -> ScoreResponse:
        check_model_name(body.model, name)
        items = body.trace_inputs()
        batch = body.traces is not None
        check_batch(len(items), "traces", "traces")
        params = [f"traces[{i}]" if batch else None for i in range(len(items))]

        def prepare() -> tuple[list[Trace], list[Encoded]]:
            traces = score_traces(spec, items, max_steps=cfg.max_steps, batch=batch)
            return traces, encode_all(traces, params)

        traces, encs = await off_loop(prepare)
        scores = await scores_of(encs, params, request)
        how = body.aggregation or spec.aggregation
        tokens = sum(len(e.input_ids) for e in encs)
        return ScoreResponse(
            model=name,
            kind=kind,
            aggregation=how,
            traces=[
                ScoredTraceOut(
                    step_scores=s,
                    aggregates=Aggregates(**aggs),
                    score=aggs[how],
                    steps=list(t.steps),
                )
                for t, s, aggs in zip(traces, scores, map(aggregate_all, scores), strict=True)
            ],
            usage=Usage(prompt_tokens=tokens, total_tokens=tokens),
        )

    @app.post(
        "/pooling",
        response_model=PoolingResponse,
        responses=_ERRORS,
        summary="vLLM's pooling API: [p_class0, p_class1] at every step tag",
    )
    async def pooling(body: PoolingRequest, request: Request) -> PoolingResponse:
        check_model_name(body.model, name)
        if refusal is not None:
            raise ApiError(400, refusal)
        if body.task not in (None, "token_classify"):
            raise ApiError(
                400,
                f"task {body.task!r} is not served; a PRM's step scores are 'token_classify' "
                "(or leave task out)",
                param="task",
            )
        if body.encoding_format != "float":
            raise ApiError(400, "only encoding_format 'float' is served", param="encoding_format")
        if body.use_activation is False:
            raise ApiError(
                400,
                "only probabilities are served (use_activation true or absent)",
                param="use_activation",
            )
        if body.truncate_prompt_tokens not in (None, -1):
            raise ApiError(
                400,
                "truncate_prompt_tokens is not served: cutting the input would drop step tags",
                param="truncate_prompt_tokens",
            )
        if body.messages is not None:
            add_special = bool(body.add_special_tokens)

            def render() -> str:
                try:
                    return prm.tokenizer.apply_chat_template(
                        body.messages,
                        tokenize=False,
                        add_generation_prompt=body.add_generation_prompt,
                    )
                except Exception as exc:  # a template error is the request's
                    raise ApiError(
                        400,
                        f"the messages cannot be rendered with the chat template ({exc})",
                        param="messages",
                    ) from None

            texts = [await off_loop(render)]
            params = ["messages"]
        else:
            add_special = (
                spec.add_special_tokens
                if body.add_special_tokens is None
                else body.add_special_tokens
            )
            texts = [body.input] if isinstance(body.input, str) else list(body.input or [])
            if not all(isinstance(t, str) for t in texts):
                raise ApiError(
                    400,
                    "token-id input is not served; send the text with its step tags",
                    param="input",
                )
            params = [f"input[{i}]" for i in range(len(texts))]
        check_batch(len(texts), "inputs", "input")
        encs = await off_loop(
            lambda: [
                pooling_encoded(
                    prm, t, add_special_tokens=add_special, max_steps=cfg.max_steps, param=p
                )
                for t, p in zip(texts, params, strict=True)
            ]
        )
        scores = await scores_of(encs, params, request)
        tokens = sum(len(e.input_ids) for e in encs)
        return PoolingResponse(
            id=f"pool-{uuid.uuid4().hex}",
            created=int(time.time()),
            model=name,
            data=[
                PoolingData(index=i, data=pooling_rows(positive_index, s))
                for i, s in enumerate(scores)
            ],
            usage=Usage(prompt_tokens=tokens, total_tokens=tokens),
        )

    @app.post(
        "/get_reward",
        response_model=RewardResponse,
        responses=_ERRORS,
        summary="OpenRLHF's remote reward model: one aggregated PRM score per query",
    )
    async def get_reward(body: RewardRequest, request: Request) -> RewardResponse:
        check_batch(len(body.query), "queries", "query")
        params = [f"query[{i}]" for i in range(len(body.query))]

        def prepare() -> list[Encoded]:
            traces = reward_traces(spec, body.query, body.prompts, max_steps=cfg.max_steps)
            return encode_all(traces, params)

        encs = await off_loop(prepare)
        scores = await scores_of(encs, params, request)
        aggs = [aggregate_all(s) for s in scores]
        rewards = [a[spec.aggregation] for a in aggs]
        logs = {f"prm_{how}": [a[how] for a in aggs] for how in AGGREGATIONS}
        logs["prm_steps"] = [float(len(s)) for s in scores]
        return RewardResponse(rewards=rewards, scores=list(rewards), extra_logs=logs)

    @app.get("/health", response_model=HealthResponse, summary="200 once the model is loaded")
    async def health() -> HealthResponse:
        return HealthResponse(
            model=name,
            head=spec.head,
            kind=kind,
            aggregation=spec.aggregation,
            pooling_positive_index=positive_index,
        )

    created = int(time.time())

    @app.get("/v1/models", response_model=ModelList, summary="The served model")
    async def models() -> ModelList:
        return ModelList(data=[ModelCard(id=name, created=created)])

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics_route() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return app
