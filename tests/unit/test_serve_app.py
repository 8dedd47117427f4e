"""prmkit serve: real uvicorn servers (in a thread, 127.0.0.1, a free port) over tiny random PRMs.

Every answer is checked against in-process scoring (``PRMScorer.score``) or a direct forward
pass; errors against the one error shape. Nothing is mocked: the requests go over TCP through
httpx, the batcher runs the real forward passes in its worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Iterator

import httpx
import pytest
import torch

from prmkit.cli import main
from prmkit.errors import ConfigError
from prmkit.prm import PRMSpec
from prmkit.prm.formats import encode, render, resolve_label_token_ids
from prmkit.records import Problem, Trace
from prmkit.score import PRMScorer, aggregate, aggregate_all, text_trace
from prmkit.serve import (
    AsyncHTTPScorer,
    HTTPScorer,
    ServeConfig,
    ServeError,
    VLLMPoolingScorer,
    create_app,
    serve_in_thread,
)
from prmkit.serve.batcher import Batcher
from prmkit.train.loop import build_prm

pytestmark = pytest.mark.usefixtures("one_thread")

PROMPT = "Tom has 3 apples. He buys 4 more. How many apples does Tom have now?"


def trace(i: int, n_steps: int, prompt: str = PROMPT) -> Trace:
    steps = [f"Step {k + 1}: {3 + k} + {i} = {3 + k + i}." for k in range(n_steps)]
    return Trace(id=f"t{i}", problem_id=f"p{i}", prompt=f"{prompt} ({i})", steps=steps)


def error_of(response: httpx.Response, status: int) -> dict:
    """The error object of an error answer, after checking the shape and the status."""
    assert response.status_code == status, response.text
    assert "Traceback" not in response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == status and error["message"]
    return error


def metric(url: str, name: str, **labels: str) -> float:
    """One sample of ``/metrics`` (0 when absent)."""
    text = httpx.get(url + "/metrics").text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        got_name, _, got_labels = key.partition("{")
        parts = sorted(got_labels.rstrip("}").split(",")) if got_labels else []
        if got_name == name and ",".join(p for p in parts if p) == want:
            return float(value)
    return 0.0


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def trl_prm(tiny_model_dir):
    return build_prm(PRMSpec.from_format("trl", head="tokcls"), str(tiny_model_dir))


@pytest.fixture(scope="module")
def qwen_prm(tiny_model_dir):
    """Qwen2.5-Math-PRM's format: chat template, ``<extra_0>`` after every step, joined."""
    spec = PRMSpec.from_format("qwen_prm", head="tokcls")
    return build_prm(spec, str(tiny_model_dir), add_tag_token=True, seed=1)


@pytest.fixture(scope="module")
def shepherd_prm(tiny_model_dir):
    """Math-Shepherd's format: label tokens ``+``/``-`` read off the LM head at `` ки``."""
    spec = PRMSpec.from_format("math_shepherd", head="labeltok")
    return build_prm(spec, str(tiny_model_dir), seed=2)


@pytest.fixture(scope="module")
def implicit_prm(tiny_model_dir):
    return build_prm(PRMSpec.from_format("trl", head="implicit"), str(tiny_model_dir), seed=3)


CFG = {"max_wait_ms": 40, "max_steps": 8, "max_traces_per_request": 40, "max_body_bytes": 20000}


@pytest.fixture(scope="module")
def trl_url(trl_prm) -> Iterator[str]:
    with serve_in_thread(
        create_app(PRMScorer(trl_prm), ServeConfig(model_name="trl", **CFG))
    ) as url:
        yield url


@pytest.fixture(scope="module")
def qwen_url(qwen_prm) -> Iterator[str]:
    with serve_in_thread(
        create_app(PRMScorer(qwen_prm), ServeConfig(model_name="qwen", **CFG))
    ) as url:
        yield url


@pytest.fixture(scope="module")
def shepherd_url(shepherd_prm) -> Iterator[str]:
    cfg = ServeConfig(model_name="shepherd", **CFG)
    with serve_in_thread(create_app(PRMScorer(shepherd_prm), cfg)) as url:
        yield url


@pytest.fixture(scope="module")
def tight_url(trl_prm) -> Iterator[str]:
    """Tiny limits: a lone trace waits 1 s for a batch of 2, but may only wait 0.3 s."""
    cfg = ServeConfig(
        max_batch_traces=2,
        max_queue=2,
        max_traces_per_request=2,
        max_wait_ms=1000,
        request_timeout_s=0.3,
    )
    with serve_in_thread(create_app(PRMScorer(trl_prm), cfg)) as url:
        yield url


# ----------------------------------------------------------------------------- /v1/score


def test_score_single_and_batch_equal_in_process(trl_url, trl_prm):
    scorer = PRMScorer(trl_prm)
    traces = [trace(i, n) for i, n in enumerate([1, 3, 2])]
    expected = scorer.score(traces)

    one = httpx.post(
        trl_url + "/v1/score", json={"prompt": PROMPT + " (0)", "steps": traces[0].steps}
    )
    body = one.json()
    assert one.status_code == 200, one.text
    assert body["model"] == "trl" and body["kind"] == "probability"
    assert body["aggregation"] == trl_prm.spec.aggregation == "min"
    (got,) = body["traces"]
    assert got["step_scores"] == pytest.approx(expected[0], abs=1e-6)
    assert got["steps"] == traces[0].steps

    batch = {
        "traces": [{"prompt": t.prompt, "steps": t.steps} for t in traces],
        "aggregation": "prod",
    }
    body = httpx.post(trl_url + "/v1/score", json=batch).json()
    assert body["aggregation"] == "prod"
    assert body["usage"]["prompt_tokens"] == sum(len(scorer.encode(t).input_ids) for t in traces)
    for got, want in zip(body["traces"], expected, strict=True):
        assert got["step_scores"] == pytest.approx(want, abs=1e-6)
        assert got["aggregates"] == pytest.approx(aggregate_all(got["step_scores"]))
        assert got["score"] == pytest.approx(aggregate(got["step_scores"], "prod"))


def test_score_text_is_split_with_the_spec(trl_url, trl_prm):
    text = "3 + 4 = 7.\n\nSo Tom has 7 apples.\n\nThe answer is 7."
    want = text_trace(trl_prm.spec, PROMPT, text)
    body = httpx.post(trl_url + "/v1/score", json={"prompt": PROMPT, "text": text}).json()
    (got,) = body["traces"]
    assert got["steps"] == want.steps == ["3 + 4 = 7.", "So Tom has 7 apples.", "The answer is 7."]
    assert got["step_scores"] == pytest.approx(PRMScorer(trl_prm).score([want])[0], abs=1e-6)
    mixed = {"traces": [{"prompt": PROMPT, "text": text}, {"prompt": PROMPT, "steps": want.steps}]}
    a, b = httpx.post(trl_url + "/v1/score", json=mixed).json()["traces"]
    assert a["step_scores"] == pytest.approx(b["step_scores"], abs=1e-6)


def test_implicit_prm_returns_rewards_and_refuses_pooling(implicit_prm):
    traces = [trace(0, 2), trace(1, 3)]
    expected = PRMScorer(implicit_prm).score(traces)
    with serve_in_thread(create_app(PRMScorer(implicit_prm), ServeConfig(max_wait_ms=5))) as url:
        assert httpx.get(url + "/health").json()["pooling_positive_index"] is None
        body = httpx.post(
            url + "/v1/score",
            json={"traces": [{"prompt": t.prompt, "steps": t.steps} for t in traces]},
        ).json()
        assert body["kind"] == "reward"
        for got, want in zip(body["traces"], expected, strict=True):
            assert got["step_scores"] == pytest.approx(want, abs=1e-6)
        error = error_of(httpx.post(url + "/pooling", json={"input": "a\n"}), 400)
        assert "implicit" in error["message"] and "/v1/score" in error["message"]


# ----------------------------------------------------------------------------- /pooling


def _qwen_text(prm, t: Trace) -> str:
    return render(prm.spec, prm.tokenizer, t.prompt, t.steps)[0]


def test_pooling_rows_are_the_softmax_at_step_tags(qwen_url, qwen_prm):
    traces = [trace(0, 2), trace(1, 4)]
    texts = [_qwen_text(qwen_prm, t) for t in traces]
    assert all(t.count("<extra_0>") == len(tr.steps) for t, tr in zip(texts, traces, strict=True))
    response = httpx.post(
        qwen_url + "/pooling",
        json={
            "model": "qwen",
            "input": texts,
            "task": "token_classify",
            "encoding_format": "float",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list" and body["model"] == "qwen" and body["id"].startswith("pool-")
    assert isinstance(body["created"], int)
    tag_id = qwen_prm.tokenizer.convert_tokens_to_ids("<extra_0>")
    tokens = 0
    for i, (text, item) in enumerate(zip(texts, body["data"], strict=True)):
        assert item["index"] == i and item["object"] == "pooling"
        ids = qwen_prm.tokenizer(text, add_special_tokens=qwen_prm.spec.add_special_tokens)[
            "input_ids"
        ]
        tokens += len(ids)
        with torch.inference_mode():
            logits = qwen_prm.model(torch.tensor([ids])).logits[0]  # (seq, 2)
        at = torch.tensor(ids) == tag_id  # every <extra_0>: vLLM's step_tag_id rows
        want = torch.softmax(logits[at].float(), dim=-1).tolist()
        assert len(item["data"]) == len(traces[i].steps)
        for row, w in zip(item["data"], want, strict=True):
            assert row == pytest.approx(w, abs=1e-6)
    assert body["usage"] == {
        "prompt_tokens": tokens,
        "total_tokens": tokens,
        "completion_tokens": 0,
    }
    assert httpx.get(qwen_url + "/health").json()["pooling_positive_index"] == 1


def test_pooling_chat_messages_equal_the_rendered_input(qwen_url, qwen_prm):
    t = trace(2, 3)
    body = "".join(f"{s}<extra_0>" for s in t.steps)
    messages = [
        {"role": "system", "content": qwen_prm.spec.system_prompt},
        {"role": "user", "content": t.prompt},
        {"role": "assistant", "content": body},
    ]
    chat = httpx.post(qwen_url + "/pooling", json={"model": "qwen", "messages": messages})
    text = httpx.post(qwen_url + "/pooling", json={"input": _qwen_text(qwen_prm, t)})
    assert chat.status_code == text.status_code == 200, chat.text
    (a,), (b,) = chat.json()["data"], text.json()["data"]
    assert len(a["data"]) == len(b["data"]) == 3
    for x, y in zip(a["data"], b["data"], strict=True):
        assert x == pytest.approx(y, abs=1e-6)


def test_pooling_labeltok_rows_are_negative_then_positive(shepherd_url, shepherd_prm):
    t = trace(3, 3)
    text = render(shepherd_prm.spec, shepherd_prm.tokenizer, t.prompt, t.steps)[0]
    body = httpx.post(shepherd_url + "/pooling", json={"input": text}).json()
    rows = body["data"][0]["data"]
    enc = encode(shepherd_prm.spec, shepherd_prm.tokenizer, t.prompt, t.steps)
    plus, minus = resolve_label_token_ids(shepherd_prm.spec, shepherd_prm.tokenizer)
    with torch.inference_mode():
        logits = shepherd_prm.model(torch.tensor([enc.input_ids])).logits[0]
    want = torch.softmax(logits[enc.step_positions][:, [minus, plus]].float(), dim=-1).tolist()
    assert len(rows) == 3
    for row, w in zip(rows, want, strict=True):
        assert row == pytest.approx(w, abs=1e-6)
    assert httpx.get(shepherd_url + "/health").json()["pooling_positive_index"] == 1


@pytest.mark.parametrize("name", ["qwen", "shepherd"])
def test_vllm_pooling_scorer_equals_in_process(request, name):
    """VLLMPoolingScorer through prmkit's own /pooling scores what PRMScorer scores."""
    prm = request.getfixturevalue(f"{name}_prm")
    url = request.getfixturevalue(f"{name}_url")
    traces = [trace(i, n) for i, n in enumerate([1, 4, 2])]
    expected = PRMScorer(prm).score(traces)
    with VLLMPoolingScorer(url, spec=prm.spec, tokenizer=prm.tokenizer, model=name) as client:
        got = client.score(traces)
    for g, w in zip(got, expected, strict=True):
        assert g == pytest.approx(w, abs=1e-5)


def test_vllm_pooling_scorer_refuses_specs_pooling_cannot_serve(trl_prm, implicit_prm):
    for prm in (trl_prm, implicit_prm):
        with pytest.raises(ConfigError, match="cannot be scored through /pooling"):
            VLLMPoolingScorer(
                "http://127.0.0.1:1", spec=prm.spec, tokenizer=prm.tokenizer, model="x"
            )


def test_pooling_refuses_per_step_specs_and_bad_fields(trl_url, qwen_url):
    assert (
        "per_step"
        in error_of(httpx.post(trl_url + "/pooling", json={"input": "a\n"}), 400)["message"]
    )
    cases = [
        ({"input": "no tag here"}, "input[0]", "no step tag"),
        ({"input": [[1, 2, 3]]}, "input", "token-id"),
        ({"input": "a<extra_0>", "task": "embed"}, "task", "token_classify"),
        ({"input": "a<extra_0>", "encoding_format": "base64"}, "encoding_format", "float"),
        ({"input": "a<extra_0>", "use_activation": False}, "use_activation", "probabilities"),
        ({"input": "a<extra_0>", "model": "other"}, "model", "qwen"),
        ({"input": "a<extra_0>" * 9}, "input[0]", "max_steps"),
    ]
    for payload, param, words in cases:
        status = 404 if param == "model" else 413 if "max_steps" in words else 400
        error = error_of(httpx.post(qwen_url + "/pooling", json=payload), status)
        assert error["param"] == param and words in error["message"], error


# ----------------------------------------------------------------------------- /get_reward


def test_get_reward_aggregates_the_response_steps(trl_url, trl_prm):
    prompts = ["What is 3 + 4? ", "What is 2 + 2? "]
    responses = ["3 + 4 = 7.\n\nThe answer is 7.", "2 + 2 = 4.\n\nSo 4.\n\nThe answer is 4."]
    queries = [p + r for p, r in zip(prompts, responses, strict=True)]
    body = httpx.post(
        trl_url + "/get_reward", json={"query": queries, "prompts": prompts, "labels": ["7", "4"]}
    ).json()
    traces = [text_trace(trl_prm.spec, p, r) for p, r in zip(prompts, responses, strict=True)]
    expected = PRMScorer(trl_prm).score(traces)
    want = [aggregate(s, trl_prm.spec.aggregation) for s in expected]
    assert body["rewards"] == pytest.approx(want, abs=1e-6)
    assert body["scores"] == body["rewards"]
    assert body["extra_logs"]["prm_steps"] == [2.0, 3.0]
    assert body["extra_logs"]["prm_mean"] == pytest.approx(
        [sum(s) / len(s) for s in expected], abs=1e-6
    )


# ----------------------------------------------------------------------------- errors


def test_errors_have_the_status_and_the_shape(trl_url):
    post = lambda path, **kw: httpx.post(trl_url + path, **kw)  # noqa: E731
    raw = {"headers": {"content-type": "application/json"}}
    assert (
        "malformed JSON"
        in error_of(post("/v1/score", content=b'{"prompt": ', **raw), 400)["message"]
    )
    error = error_of(post("/v1/score", json={"prompt": "q", "steps": ["a", 3]}), 422)
    assert error["param"] == "steps[1]"
    error = error_of(post("/v1/score", json={"traces": [{"prompt": 1, "steps": ["a"]}]}), 422)
    assert error["param"] == "traces[0].prompt"
    assert error_of(post("/v1/score", json={"prompt": "q"}), 422)["message"]
    assert error_of(post("/v1/score", json={"prompt": "q", "steps": ["a"], "extra": 1}), 422)
    error = error_of(post("/v1/score", content=b"x" * 20001, **raw), 413)
    assert "max_body_bytes" in error["message"]
    error = error_of(post("/v1/score", json={"prompt": "q", "steps": ["a"] * 9}), 413)
    assert error["param"] == "steps" and "max_steps" in error["message"]
    batch = {"traces": [{"prompt": "q", "steps": ["a"]}] * 41}
    error = error_of(post("/v1/score", json=batch), 413)
    assert error["param"] == "traces" and "max_traces_per_request" in error["message"]
    error = error_of(post("/v1/score", json={"traces": [{"prompt": "q", "text": " \n\n "}]}), 400)
    assert error["param"] == "traces[0]"
    error = error_of(post("/v1/score", json={"prompt": "q", "steps": ["a"], "model": "m"}), 404)
    assert error["param"] == "model" and error["type"] == "not_found_error"
    long = {"prompt": "q", "steps": ["word " * 3000]}
    assert "max_length" in error_of(post("/v1/score", json=long), 400)["message"]
    error = error_of(
        post("/get_reward", json={"query": ["a b", "c d"], "prompts": ["a", "x"]}), 400
    )
    assert error["param"] == "query[1]" and "does not start with prompts[1]" in error["message"]
    assert error_of(post("/get_reward", json={"query": ["a"], "prompts": []}), 400)["param"] == (
        "prompts"
    )
    assert error_of(post("/nowhere", json={}), 404)["type"] == "not_found_error"
    assert error_of(httpx.get(trl_url + "/v1/score"), 405)["type"] == "method_not_allowed"


def test_bearer_token_on_every_route_but_health(trl_prm, monkeypatch):
    monkeypatch.setenv("PRMKIT_API_KEY", "from-env")
    assert ServeConfig().resolved_api_key() == "from-env"
    assert ServeConfig(api_key="given").resolved_api_key() == "given"
    payload = {"prompt": "q", "steps": ["a"]}
    with serve_in_thread(create_app(PRMScorer(trl_prm), ServeConfig(api_key="s3cret"))) as url:
        assert httpx.get(url + "/health").status_code == 200
        for method, path in [("POST", "/v1/score"), ("GET", "/metrics"), ("GET", "/openapi.json")]:
            response = httpx.request(method, url + path, json=payload)
            assert "no API key" in error_of(response, 401)["message"]
            assert response.headers["www-authenticate"] == "Bearer"
        wrong = httpx.post(url + "/v1/score", json=payload, headers={"Authorization": "Bearer x"})
        assert "wrong API key" in error_of(wrong, 401)["message"]
        ok = httpx.post(url + "/v1/score", json=payload, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        with HTTPScorer(url, api_key="s3cret") as client:
            assert len(client.score([trace(0, 2)])[0]) == 2
        with HTTPScorer(url, api_key="bad", retries=3) as client, pytest.raises(ServeError) as info:
            client.score([trace(0, 2)])
        assert info.value.status == 401 and client.attempts == 1  # a 4xx is never retried


def test_openapi_schema_and_docs(trl_url):
    schema = httpx.get(trl_url + "/openapi.json").json()
    for path in ("/v1/score", "/pooling", "/get_reward", "/health", "/metrics", "/v1/models"):
        assert path in schema["paths"], path
    names = set(schema["components"]["schemas"])
    assert {"ScoreRequest", "ScoreResponse", "PoolingRequest", "PoolingResponse"} <= names
    assert {"RewardRequest", "RewardResponse", "ErrorResponse"} <= names
    assert "ErrorResponse" in json.dumps(schema["paths"]["/v1/score"]["post"]["responses"]["413"])
    assert httpx.get(trl_url + "/docs").status_code == 200
    models = httpx.get(trl_url + "/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["trl"]


def test_serve_cli_without_a_checkpoint_fails_cleanly(capsys):
    assert main(["serve", "port=0"]) == 1
    assert "missing 'prm'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="max_traces_per_request <= max_queue"):
        ServeConfig(max_queue=4, max_traces_per_request=8)
    with pytest.raises(ConfigError, match="port"):
        ServeConfig(port=70000)


def test_server_faults_are_500_never_a_score(tiny_model_dir):
    """A forward pass that raises, or that yields NaN, answers 500: no 0, no NaN, no traceback."""
    prm = build_prm(PRMSpec.from_format("trl", head="tokcls"), str(tiny_model_dir))
    fault = {"mode": ""}

    def hook(_module, _inputs, output):
        if fault["mode"] == "raise":
            raise RuntimeError("CUDA out of memory (simulated by a forward hook)")
        if fault["mode"] == "nan":
            output.logits.fill_(float("nan"))
        return output

    prm.model.register_forward_hook(hook)
    payload = {"prompt": "q", "steps": ["a", "b"]}
    with serve_in_thread(create_app(PRMScorer(prm), ServeConfig(max_wait_ms=1))) as url:
        fault["mode"] = "raise"
        error = error_of(httpx.post(url + "/v1/score", json=payload), 500)
        assert error["type"] == "server_error" and "out of memory" in error["message"]
        fault["mode"] = "nan"
        error = error_of(
            httpx.post(url + "/get_reward", json={"query": ["q a"], "prompts": ["q"]}), 500
        )
        assert "non-finite" in error["message"] and error["param"] == "query[0]"
        fault["mode"] = ""
        assert httpx.post(url + "/v1/score", json=payload).status_code == 200


# ----------------------------------------------------------------------------- batching


def test_concurrent_requests_are_batched_without_mix_ups(trl_url, trl_prm):
    traces = [trace(i, 1 + i % 5) for i in range(32)]
    expected = PRMScorer(trl_prm).score(traces)
    before = metric(trl_url, "prmkit_batch_traces_count")

    async def all_at_once() -> list[list[list[float]]]:
        async with AsyncHTTPScorer(trl_url) as client:
            return await asyncio.gather(*(client.ascore([t]) for t in traces))

    got = asyncio.run(all_at_once())
    for (g,), want, t in zip(got, expected, traces, strict=True):
        assert len(g) == len(t.steps)
        assert g == pytest.approx(want, abs=1e-6)
    batches = metric(trl_url, "prmkit_batch_traces_count") - before
    assert 1 <= batches < 32  # some forward passes scored several requests' traces
    assert metric(trl_url, "prmkit_queue_traces") == 0
    assert metric(trl_url, "prmkit_traces_scored_total") >= 32


def test_batcher_respects_the_token_budget(trl_prm):
    scorer = PRMScorer(trl_prm)
    encs = [scorer.encode(trace(i, 1 + i % 4)) for i in range(12)]
    budget = 2 * max(len(e.input_ids) for e in encs)
    sizes: list[tuple[int, int]] = []

    async def go() -> list[list[float]]:
        batcher = Batcher(
            scorer.score_encoded,
            max_batch_traces=5,
            max_batch_tokens=budget,
            max_wait_ms=50,
            on_batch=lambda s: sizes.append((s.traces, s.tokens)),
        )
        await batcher.start()
        try:
            return await batcher.score(encs, timeout=30)
        finally:
            await batcher.stop()

    got = asyncio.run(go())
    for g, want in zip(got, scorer.score_encoded(encs), strict=True):
        assert g == pytest.approx(want, abs=1e-6)
    assert sum(n for n, _ in sizes) == 12
    assert all(n <= 5 and tokens <= budget for n, tokens in sizes)


def test_queue_full_timeout_and_client_gone(tight_url, trl_prm):
    one = {"prompt": "q", "steps": ["a", "b"]}
    two = {"traces": [one, one]}

    async def full_then_refused() -> tuple[httpx.Response, httpx.Response]:
        async with httpx.AsyncClient() as client:
            first = asyncio.create_task(client.post(tight_url + "/v1/score", json=one))
            await asyncio.sleep(0.1)  # the lone trace now waits in the queue
            second = await client.post(tight_url + "/v1/score", json=two)
            return await first, second

    first, second = asyncio.run(full_then_refused())
    assert "request_timeout_s" in error_of(first, 504)["message"]
    assert error_of(second, 429)["type"] == "rate_limit_error"
    assert second.headers["retry-after"] == "1"
    # a full batch (2 traces) runs at once
    ok = httpx.post(tight_url + "/v1/score", json=two)
    assert ok.status_code == 200
    want = PRMScorer(trl_prm).score([Trace(id="a", problem_id="a", prompt="q", steps=["a", "b"])])
    assert ok.json()["traces"][1]["step_scores"] == pytest.approx(want[0], abs=1e-6)
    # a client that leaves while its trace waits: withdrawn, the server carries on
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(tight_url + "/v1/score", json=one, timeout=0.1)
    deadline = time.monotonic() + 5
    while metric(tight_url, "prmkit_requests_total", route="/v1/score", status="499") < 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert metric(tight_url, "prmkit_queue_traces") == 0
    assert httpx.post(tight_url + "/v1/score", json=two).status_code == 200


def test_client_retries_5xx_and_429_honouring_retry_after(tight_url, trl_prm):
    lone = Trace(id="a", problem_id="a", prompt="q", steps=["a", "b"])
    with (
        HTTPScorer(tight_url, retries=2, backoff=0.01) as client,
        pytest.raises(ServeError) as info,
    ):
        client.score([lone])  # a lone trace always waits past request_timeout_s: 504
    assert info.value.status == 504 and info.value.attempts == 3 and client.attempts == 3
    assert "request_timeout_s" in str(info.value)

    pair = [lone, lone]
    want = PRMScorer(trl_prm).score(pair)

    async def refused_then_served() -> tuple[list[list[float]], float, int]:
        async with httpx.AsyncClient() as other, AsyncHTTPScorer(tight_url) as client:
            waiting = asyncio.create_task(
                other.post(tight_url + "/v1/score", json={"prompt": "q", "steps": ["a"]})
            )
            await asyncio.sleep(0.1)  # the queue holds 1 of 2: a pair gets 429 Retry-After: 1
            start = time.monotonic()
            scores = await client.ascore(pair)
            elapsed = time.monotonic() - start
            assert (await waiting).status_code == 504
            return scores, elapsed, client.attempts

    scores, elapsed, attempts = asyncio.run(refused_then_served())
    assert attempts == 2 and elapsed >= 0.9  # waited the server's Retry-After, not 0.5 s
    for g, w in zip(scores, want, strict=True):
        assert g == pytest.approx(w, abs=1e-6)


def test_a_client_leaving_mid_batch_does_not_break_the_others(trl_url, trl_prm):
    kept = trace(7, 3)
    want = PRMScorer(trl_prm).score([kept])[0]

    async def go() -> httpx.Response:
        async with httpx.AsyncClient() as leaving, httpx.AsyncClient() as staying:
            gone = asyncio.create_task(
                leaving.post(
                    trl_url + "/v1/score",
                    json={"prompt": "q", "steps": ["x"] * 4},
                    timeout=0.01,
                )
            )
            ok = await staying.post(
                trl_url + "/v1/score", json={"prompt": kept.prompt, "steps": kept.steps}
            )
            with contextlib.suppress(httpx.TimeoutException):
                await gone
            return ok

    ok = asyncio.run(go())
    assert ok.json()["traces"][0]["step_scores"] == pytest.approx(want, abs=1e-6)


# ----------------------------------------------------------------------------- search


FAVOURED = ["1", "2", "3", "Ġ=", "Ġ+", ".", "Ġ", "ĊĊ", "Ċ"]


def test_search_runs_on_an_http_scorer_unchanged(trl_url, trl_prm, smol_tokenizer):
    """search() takes HTTPScorer as its IncrementalScorer: the same picks and scores as
    in-process incremental scoring."""
    from prmkit.generate.protocol import SamplingParams
    from prmkit.generate.transformers_backend import TransformersGenerator
    from prmkit.score import IncrementalPRMScorer, IncrementalScorer, Scorer
    from prmkit.search import SearchConfig, search
    from prmkit.testing import build_tiny_lm

    model = build_tiny_lm(len(smol_tokenizer), seed=7)
    bias = torch.zeros(len(smol_tokenizer))
    bias[smol_tokenizer.convert_tokens_to_ids(FAVOURED)] = 11.0
    bias[smol_tokenizer.eos_token_id] = 8.5
    model.lm_head.register_forward_hook(lambda _m, _i, out: out + bias)
    policy = TransformersGenerator(model, smol_tokenizer, batch_size=16)
    cfg = SearchConfig(
        method="beam",
        n=4,
        m=2,
        max_steps=3,
        step_tokens=12,
        aggregation="min",
        sampling=SamplingParams(temperature=0.8, max_new_tokens=24, seed=3),
    )
    problem = Problem(id="p0", prompt=PROMPT, answer="7", meta={})
    with HTTPScorer(trl_url, name="trl") as remote:
        assert isinstance(remote, Scorer) and isinstance(remote, IncrementalScorer)
        (over_http,) = search([problem], policy, remote, cfg)
    (local,) = search([problem], policy, IncrementalPRMScorer(trl_prm), cfg)
    assert over_http.record is not None and local.record is not None
    assert over_http.record.steps == local.record.steps
    assert over_http.record.step_scores == pytest.approx(local.record.step_scores, abs=1e-5)
    assert over_http.record.prm == "trl"
    assert [b.state.steps for b in over_http.candidates] == [
        b.state.steps for b in local.candidates
    ]
    assert over_http.compute.prm_tokens > 0


def test_listening_line_format():
    from prmkit.serve.run import listening_line

    line = listening_line("127.0.0.1", 8123, "prm")
    assert line == "prmkit serve: listening on http://127.0.0.1:8123 (model prm)"
    assert re.search(r"http://\[::1\]:9 ", listening_line("::1", 9, "m"))
