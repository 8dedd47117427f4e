"""A remote policy: any OpenAI-compatible server (vLLM, SGLang, llama.cpp server, TGI).

Two request modes:

* With a local ``tokenizer`` (recommended), prefixes are sent to ``/completions`` as token ids
  built by :func:`prmkit.generate.chat.encode_prefix`: the server sees exactly the input the
  in-process backend would feed, chat template and step separator included.
* Without one, prefixes go to ``/chat/completions`` as messages; given steps become a final
  assistant message continued in place (vLLM's ``continue_final_message``).

``stop="step"`` sends the separator ``"\\n\\n"`` as a stop string and also cuts the returned text at
the first step boundary client-side (so a server that ignores stop strings still yields one step).
Per-sample token counts come from the returned logprobs (one entry per generated token); when a
server returns none, the local tokenizer re-counts the text, and as a last resort the request's
``usage`` is split over its samples. ``meta["token_count"]`` names the source used.

Seeds: prefix ``i`` of a call seeded ``s`` is requested with seed ``row_seed(s, i, 0)``; whether
the ``n`` samples are then reproducible is up to the server (vLLM: yes).

Only the standard library is used (``urllib``), with retries on connection errors and 5xx.

Example:
    >>> gen = OpenAIGenerator("http://localhost:8000/v1", "smollm2")  # doctest: +SKIP
    >>> gen.sample(["What is 2+3?"], n=2, params=SamplingParams())[0][0].text  # doctest: +SKIP
    '2 + 3 = 5.\\n\\nThe answer is 5.'
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from prmkit.errors import PrmkitError
from prmkit.generate.chat import STEP_SEPARATOR, encode_prefix, find_step_end
from prmkit.generate.protocol import Completion, Prefix, SamplingParams, StopAt
from prmkit.generate.sampling import check_params, row_seed
from prmkit.steps import join_steps

__all__ = ["OpenAIGenerator", "RemoteGeneratorError"]

_RETRY_STATUS = {429, 500, 502, 503, 504}


class RemoteGeneratorError(PrmkitError, RuntimeError):
    """The server could not be reached, or answered with an error or an unexpected shape."""


class OpenAIGenerator:
    """A :class:`~prmkit.generate.protocol.Generator` backed by an OpenAI-compatible server.

    Args:
        base_url: The API root, e.g. ``http://localhost:8000/v1``.
        model: The model name the server serves.
        tokenizer: The model's tokenizer; enables the exact ``/completions`` token-id mode.
        api_key: Sent as a bearer token when given.
        system: System message for the chat template (``None``: the template's default).
        chat: Use the chat template (token-id mode only; ``False``: plain prompt text).
        timeout: Seconds per HTTP request.
        max_retries: Retries on connection errors and 429/5xx answers (exponential backoff).
        concurrency: Prefixes requested in parallel.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        tokenizer: Any = None,
        api_key: str | None = None,
        system: str | None = None,
        chat: bool = True,
        timeout: float = 120.0,
        max_retries: int = 2,
        concurrency: int = 4,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.tokenizer = tokenizer
        self.api_key = api_key
        self.system = system
        self.chat = chat
        self.timeout = timeout
        self.max_retries = max_retries
        self.concurrency = concurrency

    def sample(
        self, prompts: Sequence[str], n: int, params: SamplingParams
    ) -> list[list[Completion]]:
        """``n`` whole solutions per prompt (``out[i][j]``: sample j of prompt i)."""
        return self.continue_from([Prefix(p) for p in prompts], n, params, stop="solution")

    def continue_from(
        self, prefixes: Sequence[Prefix], n: int, params: SamplingParams, stop: StopAt = "solution"
    ) -> list[list[Completion]]:
        """``n`` continuations per prefix, ending at the next step boundary or the solution end."""
        check_params(params, n)
        if params.seed is None:
            seeds: list[int | None] = [None] * len(prefixes)
        else:
            seeds = [row_seed(params.seed, i, 0) for i in range(len(prefixes))]
        jobs = list(zip(prefixes, seeds, strict=True))
        with ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
            return list(pool.map(lambda job: self._one(job[0], n, params, stop, job[1]), jobs))

    # -- one prefix ------------------------------------------------------------------------

    def _one(
        self, prefix: Prefix, n: int, params: SamplingParams, stop: StopAt, seed: int | None
    ) -> list[Completion]:
        body: dict[str, Any] = {
            "model": self.model,
            "n": n,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_new_tokens,
        }
        if seed is not None:
            body["seed"] = seed
        if params.top_k > 0:
            body["top_k"] = params.top_k
        if params.ignore_eos:
            body["ignore_eos"] = True
        if stop == "step":
            body["stop"] = [STEP_SEPARATOR]
        prompt_ids: list[int] | None = None
        if self.tokenizer is not None:
            prompt_ids = encode_prefix(self.tokenizer, prefix, system=self.system, chat=self.chat)
            body.update(prompt=prompt_ids, logprobs=0)
            answer = self._post("/completions", body)
        else:
            body.update(messages=self._messages(prefix), logprobs=True, top_logprobs=0)
            if prefix.steps:
                body.update(continue_final_message=True, add_generation_prompt=False)
            answer = self._post("/chat/completions", body)
        return self._parse(answer, n, stop, prompt_ids, seed)

    def _messages(self, prefix: Prefix) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": self.system}] if self.system is not None else []
        messages.append({"role": "user", "content": prefix.prompt})
        if prefix.steps:
            messages.append(
                {"role": "assistant", "content": join_steps(list(prefix.steps)) + STEP_SEPARATOR}
            )
        return messages

    def _parse(
        self,
        answer: dict[str, Any],
        n: int,
        stop: StopAt,
        prompt_ids: list[int] | None,
        seed: int | None,
    ) -> list[Completion]:
        choices = answer.get("choices")
        if not isinstance(choices, list) or len(choices) != n:
            raise RemoteGeneratorError(
                "unexpected number of choices in the server's answer",
                got=None if not isinstance(choices, list) else len(choices),
                expected=f"{n} choices",
                fix="check that the server supports the 'n' parameter",
            )
        choices = sorted(choices, key=lambda c: c.get("index", 0))
        usage = answer.get("usage") or {}
        prompt_tokens = len(prompt_ids) if prompt_ids is not None else usage.get("prompt_tokens")
        if not isinstance(prompt_tokens, int):
            raise RemoteGeneratorError(
                "the server reported no prompt token count",
                got=usage,
                expected="usage.prompt_tokens",
                fix="pass tokenizer= to count tokens locally",
            )
        counts, source = self._counts(choices, usage, n)
        out = []
        for j, (choice, count) in enumerate(zip(choices, counts, strict=True)):
            text = _choice_text(choice)
            reason = _finish(choice, stop)
            if stop == "step":
                cut = find_step_end(text)
                if cut is not None:
                    text, reason = text[:cut], "stop"
            out.append(
                Completion(
                    text=text,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=count,
                    finish_reason=reason,
                    meta={"seed": seed, "sample_index": j, "token_count": source},
                )
            )
        return out

    def _counts(
        self, choices: list[dict[str, Any]], usage: dict[str, Any], n: int
    ) -> tuple[list[int], str]:
        counts = [_logprob_count(c) for c in choices]
        if all(c is not None for c in counts):
            return [int(c) for c in counts if c is not None], "logprobs"
        if self.tokenizer is not None:
            return [
                len(self.tokenizer.encode(_choice_text(c), add_special_tokens=False))
                for c in choices
            ], "retokenized"
        total = usage.get("completion_tokens")
        if not isinstance(total, int):
            raise RemoteGeneratorError(
                "the server reported no completion token counts",
                got=usage,
                expected="logprobs or usage.completion_tokens",
                fix="pass tokenizer= to count tokens locally",
            )
        return [total // n + (1 if j < total % n else 0) for j in range(n)], "usage_split"

    def _post(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        url = self.base_url + route
        attempt = 0
        while True:
            request = urllib.request.Request(url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode("utf-8", "replace")[:500]
                if exc.code not in _RETRY_STATUS or attempt >= self.max_retries:
                    raise RemoteGeneratorError(
                        f"the server answered HTTP {exc.code}",
                        got=detail,
                        expected="HTTP 200 with a completion",
                        where=url,
                        fix="check the model name and the request parameters",
                    ) from None
            except (urllib.error.URLError, OSError) as exc:
                if attempt >= self.max_retries:
                    raise RemoteGeneratorError(
                        "cannot reach the server",
                        got=str(exc),
                        where=url,
                        expected="an OpenAI-compatible server",
                        fix="start the server or fix base_url (it should end in /v1)",
                    ) from None
            except json.JSONDecodeError:
                raise RemoteGeneratorError(
                    "the server's answer is not JSON",
                    where=url,
                    expected="a JSON completion",
                    fix="check base_url",
                ) from None
            time.sleep(0.5 * 2**attempt)
            attempt += 1


def _choice_text(choice: dict[str, Any]) -> str:
    if "message" in choice:
        return (choice["message"] or {}).get("content") or ""
    return choice.get("text") or ""


def _logprob_count(choice: dict[str, Any]) -> int | None:
    logprobs = choice.get("logprobs")
    if not isinstance(logprobs, dict):
        return None
    if isinstance(logprobs.get("tokens"), list):  # /completions
        return len(logprobs["tokens"])
    if isinstance(logprobs.get("content"), list):  # /chat/completions
        return len(logprobs["content"])
    return None


def _finish(choice: dict[str, Any], stop: StopAt) -> Literal["stop", "eos", "length"]:
    if choice.get("finish_reason") == "length":
        return "length"
    stop_reason = choice.get("stop_reason")
    if isinstance(stop_reason, str):  # vLLM: the stop string that matched
        return "stop"
    if stop_reason is None and "stop_reason" in choice:  # vLLM: the EOS token
        return "eos"
    return "stop" if stop == "step" else "eos"
