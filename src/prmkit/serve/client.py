"""HTTP clients: a prmkit server as a :class:`~prmkit.score.Scorer`, and a vLLM PRM server too.

* :class:`HTTPScorer` sends traces (steps given explicitly) to a prmkit server's ``/v1/score``
  and returns one list of step scores per trace, in order: a drop-in for
  :class:`~prmkit.score.PRMScorer` wherever a ``Scorer`` is taken. It also implements
  :class:`~prmkit.score.IncrementalScorer` (``root``/``extend``), so :func:`prmkit.search.search`
  runs on it unchanged (each extension re-sends the whole trace: the server keeps no KV cache
  between requests).
* :class:`AsyncHTTPScorer`: the same with ``await scorer.ascore(traces)``.
* :class:`VLLMPoolingScorer`: the reverse direction. It renders each trace exactly as the PRM was
  trained on it (:func:`prmkit.prm.formats.render`, step tags included) and reads the positive
  column of a vLLM PRM server's ``/pooling`` rows (or prmkit's own ``/pooling``).

Retries: connection errors, timeouts, 429 and 5xx answers are retried with exponential backoff
and jitter (``backoff * 2**k`` seconds, at most ``max_backoff``, times a random factor in
[0.5, 1]); a ``Retry-After`` header replaces that delay (capped at 60 s). Other 4xx answers are
never retried. When the retries run out, or on a 4xx, a :class:`~prmkit.serve.errors.ServeError`
carries the status and the server's message; a score is never made up.

Example:
    >>> with HTTPScorer("http://127.0.0.1:8000") as scorer:  # doctest: +SKIP
    ...     scorer.score([trace])
    [[0.93, 0.12]]
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import time
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import httpx

from prmkit.errors import ConfigError
from prmkit.prm.formats import render
from prmkit.records import Trace
from prmkit.score.incremental import ScoreCost, ScoreState
from prmkit.serve.errors import ServeError
from prmkit.serve.inputs import pooling_positive_index, pooling_refusal

__all__ = ["AsyncHTTPScorer", "HTTPScorer", "VLLMPoolingScorer"]

_RETRY_AFTER_CAP = 60.0
_RETRY = object()  # judge's "try again" answer
_RETRYABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


def _retry_after(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds (a number or an HTTP date), if any."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _server_message(response: httpx.Response) -> str:
    """The ``error.message`` of an error answer, or the start of its body."""
    try:
        body = response.json()
        return str(body["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:300]


class _Policy:
    """What to do with one attempt's outcome: return, retry after a delay, or raise."""

    def __init__(self, retries: int, backoff: float, max_backoff: float) -> None:
        for key, value in (
            ("retries", retries),
            ("backoff", backoff),
            ("max_backoff", max_backoff),
        ):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(
                    f"'{key}' out of range",
                    got=value,
                    expected="a number >= 0",
                    fix=f"set {key} to 0 or more",
                )
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        if retry_after is not None:
            return min(retry_after, _RETRY_AFTER_CAP)
        base = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return base * (0.5 + random.random() / 2)

    def judge(
        self, url: str, attempt: int, outcome: httpx.Response | Exception
    ) -> tuple[Any, float]:
        """``(json, 0)`` on success, ``(_RETRY, delay)`` to retry; raises :class:`ServeError`."""
        if isinstance(outcome, httpx.Response):
            if outcome.status_code < 400:
                try:
                    return outcome.json(), 0.0
                except ValueError:
                    raise ServeError(
                        "the server's answer is not JSON",
                        status=outcome.status_code,
                        server_message=outcome.text[:300],
                        attempts=attempt,
                        url=url,
                        fix="check that base_url points at a prmkit or vLLM server",
                    ) from None
            status, message = outcome.status_code, _server_message(outcome)
            if not _retryable(status):
                raise ServeError(
                    f"the server refused the request (HTTP {status}, attempt {attempt})",
                    status=status,
                    server_message=message,
                    attempts=attempt,
                    url=url,
                    fix="read the server's message; the request is not retried",
                )
            retry_after = _retry_after(outcome)
        elif isinstance(outcome, _RETRYABLE_ERRORS):
            status, message, retry_after = None, f"{type(outcome).__name__}: {outcome}", None
        else:
            raise ServeError(
                f"the request could not be sent ({type(outcome).__name__}: {outcome})",
                attempts=attempt,
                url=url,
                fix="check base_url",
            )
        if attempt > self.retries:
            last = f"HTTP {status}" if status is not None else "no answer"
            raise ServeError(
                f"no successful answer after {attempt} attempts (last: {last})",
                status=status,
                server_message=message,
                attempts=attempt,
                url=url,
                fix="check that the server is up and reachable, or raise retries/timeout",
            )
        return _RETRY, self.delay(attempt, retry_after)


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _chunks(traces: Sequence[Trace], size: int) -> Iterator[Sequence[Trace]]:
    for i in range(0, len(traces), size):
        yield traces[i : i + size]


def _check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ConfigError(
            "'batch_size' out of range",
            got=batch_size,
            expected="an integer >= 1",
            fix="set batch_size to the traces per request (at most the server's "
            "max_traces_per_request)",
        )


def _score_payload(traces: Sequence[Trace], model: str | None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "traces": [{"prompt": t.prompt, "steps": list(t.steps)} for t in traces]
    }
    if model is not None:
        payload["model"] = model
    return payload


def _unexpected(url: str, what: str) -> ServeError:
    return ServeError(
        f"unexpected answer: {what}",
        status=200,
        url=url,
        fix="check that base_url points at the right kind of server",
    )


def _read_scores(data: Any, traces: Sequence[Trace], url: str) -> tuple[list[list[float]], int]:
    """The step scores of a ``/v1/score`` answer (checked against the traces) and its tokens."""
    got = data.get("traces") if isinstance(data, dict) else None
    if not isinstance(got, list) or len(got) != len(traces):
        raise _unexpected(url, f"expected {len(traces)} scored traces")
    out = []
    for i, (item, trace) in enumerate(zip(got, traces, strict=True)):
        scores = item.get("step_scores") if isinstance(item, dict) else None
        if (
            not isinstance(scores, list)
            or len(scores) != len(trace.steps)
            or not all(isinstance(s, (int, float)) and math.isfinite(s) for s in scores)
        ):
            raise _unexpected(url, f"trace {i}: expected {len(trace.steps)} finite step scores")
        out.append([float(s) for s in scores])
    usage = data.get("usage") or {}
    return out, int(usage.get("prompt_tokens", 0))


_C = TypeVar("_C", bound="_SyncClient")


class _Client:
    """What the clients share: the server root, the retry policy, the batch size, one
    connection pool (made by ``_connect``) and the count of HTTP attempts made."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None,
        timeout: float,
        retries: int,
        backoff: float,
        max_backoff: float,
        batch_size: int,
    ) -> None:
        _check_batch_size(batch_size)
        self.base_url = base_url.rstrip("/")
        self.policy = _Policy(retries, backoff, max_backoff)
        self.batch_size = batch_size
        self.attempts = 0
        self._client = self._connect(timeout, _headers(api_key))

    def _connect(self, timeout: float, headers: dict[str, str]) -> Any:
        raise NotImplementedError


class _SyncClient(_Client):
    """The synchronous clients' base: blocking ``_post`` over an :class:`httpx.Client`."""

    def _connect(self, timeout: float, headers: dict[str, str]) -> httpx.Client:
        return httpx.Client(timeout=timeout, headers=headers)

    def _post(self, path: str, payload: dict[str, Any]) -> Any:
        url = self.base_url + path
        attempt = 0
        while True:
            attempt += 1
            self.attempts += 1
            try:
                outcome: httpx.Response | Exception = self._client.post(url, json=payload)
            except httpx.HTTPError as exc:
                outcome = exc
            data, delay = self.policy.judge(url, attempt, outcome)
            if data is not _RETRY:
                return data
            time.sleep(delay)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HTTPScorer(_SyncClient):
    """A prmkit server as a :class:`~prmkit.score.Scorer` (and an ``IncrementalScorer``).

    Args:
        base_url: The server root, e.g. ``http://127.0.0.1:8000``.
        api_key: Sent as ``Authorization: Bearer``.
        timeout: Seconds per HTTP request.
        retries: Retries after the first attempt (connection errors, timeouts, 429, 5xx).
        backoff: First retry delay in seconds (doubles each retry, with jitter).
        max_backoff: Cap on the computed delay.
        batch_size: Traces per request (keep it within the server's max_traces_per_request).
        model: Sent as ``model`` (the server checks it); ``None``: not sent.
        name: The PRM name written to search records (default: ``base_url``).
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        batch_size: int = 64,
        model: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(
            base_url,
            api_key=api_key,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
            batch_size=batch_size,
        )
        self.model = model
        self.name = name if name is not None else self.base_url

    def _score(self, traces: Sequence[Trace]) -> tuple[list[list[float]], int, int]:
        out: list[list[float]] = []
        tokens = requests = 0
        for chunk in _chunks(traces, self.batch_size):
            data = self._post("/v1/score", _score_payload(chunk, self.model))
            scores, used = _read_scores(data, chunk, self.base_url + "/v1/score")
            out += scores
            tokens += used
            requests += 1
        return out, tokens, requests

    def score(self, traces: Sequence[Trace]) -> list[list[float]]:
        """Step scores, one list per trace, in input order.

        Raises:
            ServeError: a 4xx answer, or no success within the retries.
        """
        return self._score(traces)[0]

    def root(self, prompt: str) -> ScoreState:
        """The empty state of a problem (:class:`~prmkit.score.IncrementalScorer`)."""
        return ScoreState(prompt)

    def extend(
        self, items: Sequence[tuple[ScoreState, Sequence[str]]]
    ) -> tuple[list[ScoreState], ScoreCost]:
        """Append steps to each state; the whole extended traces are scored by the server.

        The new states hold the server's scores of every step (a one-pass score of the grown
        trace). The cost counts the server's tokens, one forward pass per HTTP request and
        every step the server scored.
        """
        grow = [i for i, (_, new) in enumerate(items) if new]
        traces = [
            Trace(
                id=str(i),
                problem_id=str(i),
                prompt=items[i][0].prompt,
                steps=[*items[i][0].steps, *items[i][1]],
            )
            for i in grow
        ]
        scores, tokens, requests = self._score(traces) if traces else ([], 0, 0)
        out = [state for state, _ in items]
        for i, trace, s in zip(grow, traces, scores, strict=True):
            out[i] = ScoreState(trace.prompt, tuple(trace.steps), tuple(s))
        cost = ScoreCost(
            prm_tokens=tokens,
            prm_forward_passes=requests,
            prm_steps_scored=sum(len(t.steps) for t in traces),
        )
        return out, cost


class AsyncHTTPScorer(_Client):
    """:class:`HTTPScorer` for asyncio: ``await scorer.ascore(traces)``.

    Takes the same arguments as :class:`HTTPScorer` (but ``name``); requests of concurrent
    ``ascore`` calls share one connection pool, and the server batches them together.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        batch_size: int = 64,
        model: str | None = None,
    ) -> None:
        super().__init__(
            base_url,
            api_key=api_key,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
            batch_size=batch_size,
        )
        self.model = model

    def _connect(self, timeout: float, headers: dict[str, str]) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=timeout,
            headers=headers,
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
        )

    async def _post(self, path: str, payload: dict[str, Any]) -> Any:
        url = self.base_url + path
        attempt = 0
        while True:
            attempt += 1
            self.attempts += 1
            try:
                outcome: httpx.Response | Exception = await self._client.post(url, json=payload)
            except httpx.HTTPError as exc:
                outcome = exc
            data, delay = self.policy.judge(url, attempt, outcome)
            if data is not _RETRY:
                return data
            await asyncio.sleep(delay)

    async def ascore(self, traces: Sequence[Trace]) -> list[list[float]]:
        """Step scores, one list per trace, in input order.

        Raises:
            ServeError: a 4xx answer, or no success within the retries.
        """
        out: list[list[float]] = []
        for chunk in _chunks(traces, self.batch_size):
            data = await self._post("/v1/score", _score_payload(chunk, self.model))
            out += _read_scores(data, chunk, self.base_url + "/v1/score")[0]
        return out

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def __aenter__(self) -> AsyncHTTPScorer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class VLLMPoolingScorer(_SyncClient):
    """A vLLM PRM server's ``/pooling`` (or prmkit's) as a :class:`~prmkit.score.Scorer`.

    Each trace is rendered with :func:`prmkit.prm.formats.render` (the text the PRM was trained
    on, a step tag after every step) and sent as ``input`` with ``task="token_classify"`` and
    the spec's ``add_special_tokens``; the server returns one ``[p0, p1]`` row per step tag and
    the score is ``row[positive_index]``.

    Args:
        base_url: The server root (``http://host:8000``; the route is ``/pooling``).
        spec: The PRM's :class:`~prmkit.prm.PRMSpec` (a ``joined`` tokcls or labeltok spec).
        tokenizer: The PRM's tokenizer (renders the chat template, when the spec uses one).
        model: The served model name (vLLM's ``--served-model-name``, or the path it serves).
        api_key: Sent as ``Authorization: Bearer``.
        positive_index: The row column of P(step correct). Default: ``spec.positive_index``
            for tokcls (rows in class order) and 1 for labeltok (prmkit's rows are
            ``[negative, positive]``; a vLLM server started with ``returned_token_ids``
            ``[positive_id, negative_id]``, as Math-Shepherd's example, needs 0).
        timeout, retries, backoff, max_backoff, batch_size: As :class:`HTTPScorer`.

    Raises:
        ConfigError: a spec ``/pooling`` cannot serve (probe or implicit head; ``per_step``
            tokenization), or a positive_index other than 0 or 1.
    """

    def __init__(
        self,
        base_url: str,
        *,
        spec: Any,
        tokenizer: Any,
        model: str,
        api_key: str | None = None,
        positive_index: int | None = None,
        timeout: float = 60.0,
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        batch_size: int = 64,
    ) -> None:
        refusal = pooling_refusal(spec)
        if refusal is not None:
            raise ConfigError(
                "this PRM cannot be scored through /pooling",
                got={"head": spec.head, "tokenization": spec.tokenization},
                expected="a tokcls or labeltok head with 'joined' tokenization",
                fix=refusal,
            )
        if positive_index not in (None, 0, 1):
            raise ConfigError(
                "'positive_index' out of range",
                got=positive_index,
                expected="0 or 1 (or None for the spec's)",
                fix="pass the column of P(step correct) in the server's rows",
            )
        super().__init__(
            base_url,
            api_key=api_key,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
            batch_size=batch_size,
        )
        self.spec = spec
        self.tokenizer = tokenizer
        self.model = model
        self.positive_index = (
            positive_index if positive_index is not None else pooling_positive_index(spec)
        )

    def texts(self, traces: Sequence[Trace]) -> list[str]:
        """The rendered input text of each trace (what ``/pooling`` receives)."""
        return [render(self.spec, self.tokenizer, t.prompt, t.steps)[0] for t in traces]

    def score(self, traces: Sequence[Trace]) -> list[list[float]]:
        """Step scores, one list per trace, in input order.

        Raises:
            ServeError: an error answer, no success within the retries, or rows that do not
                match the steps (e.g. a step text that contains the step tag).
        """
        url = self.base_url + "/pooling"
        out: list[list[float]] = []
        for chunk in _chunks(traces, self.batch_size):
            payload = {
                "model": self.model,
                "input": self.texts(chunk),
                "task": "token_classify",
                "encoding_format": "float",
                "add_special_tokens": self.spec.add_special_tokens,
            }
            data = self._post("/pooling", payload)
            items = data.get("data") if isinstance(data, dict) else None
            if not isinstance(items, list) or len(items) != len(chunk):
                raise _unexpected(url, f"expected {len(chunk)} pooling results")
            items = sorted(items, key=lambda d: d.get("index", 0) if isinstance(d, dict) else 0)
            for i, (item, trace) in enumerate(zip(items, chunk, strict=True)):
                rows = item.get("data") if isinstance(item, dict) else None
                if not isinstance(rows, list) or len(rows) != len(trace.steps):
                    n = len(rows) if isinstance(rows, list) else rows
                    raise _unexpected(
                        url,
                        f"input {i}: {n} rows for {len(trace.steps)} steps (is the server's "
                        "step_tag_id this spec's step tag, and does no step contain the tag?)",
                    )
                scores = []
                for row in rows:
                    value = (
                        row[self.positive_index]
                        if isinstance(row, list) and len(row) == 2
                        else None
                    )
                    if not isinstance(value, (int, float)) or not math.isfinite(value):
                        raise _unexpected(url, f"input {i}: a row {row!r} is not [p0, p1]")
                    scores.append(float(value))
                out.append(scores)
        return out
