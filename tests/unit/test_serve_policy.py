"""``prmkit serve-policy``'s app in a thread (:func:`serve_in_thread`): OpenAI response shapes,
seeds, n, stop strings, max_tokens, logprobs, and the errors (our shape, never a silent ignore).

The policy is a tiny random Llama over SmolLM2's tokenizer (``tiny_lm``).
"""

from __future__ import annotations

import httpx
import pytest

from prmkit.generate.chat import encode_prefix
from prmkit.generate.protocol import Prefix, SamplingParams
from prmkit.generate.transformers_backend import TransformersGenerator
from prmkit.serve.policy_app import create_policy_app
from prmkit.serve.policy_config import PolicyServeConfig
from prmkit.serve.process import serve_in_thread

pytestmark = pytest.mark.usefixtures("one_thread")

PROMPT = "What is 2 + 3?"


@pytest.fixture(scope="module")
def gen(tiny_lm, smol_tokenizer) -> TransformersGenerator:
    return TransformersGenerator(tiny_lm, smol_tokenizer, batch_size=4)


@pytest.fixture(scope="module")
def url(gen):
    cfg = PolicyServeConfig(
        model_name="tiny", max_n=4, default_max_tokens=16, max_tokens_limit=64, api_key=""
    )
    with serve_in_thread(create_policy_app(gen, cfg)) as base:
        yield base


def post(url: str, route: str, **body) -> httpx.Response:
    return httpx.post(url + route, json={"model": "tiny", **body}, timeout=120)


def assert_error(resp: httpx.Response, status: int, param: str | None = None, text: str = ""):
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == status
    if param is not None:
        assert error["param"] == param
    assert text in error["message"]


def test_completions_shape_seed_and_usage(url, gen, smol_tokenizer):
    ids = encode_prefix(smol_tokenizer, Prefix(PROMPT))
    body = dict(prompt=ids, n=3, max_tokens=6, temperature=1.0, seed=7, ignore_eos=True)
    resp = post(url, "/v1/completions", **body)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["object"] == "text_completion" and out["model"] == "tiny"
    assert [c["index"] for c in out["choices"]] == [0, 1, 2]
    assert all(c["finish_reason"] == "length" and c["logprobs"] is None for c in out["choices"])
    assert out["usage"] == {
        "prompt_tokens": len(ids),
        "completion_tokens": 18,
        "total_tokens": len(ids) + 18,
    }
    # the same seed gives the same choices; they are the backend's own samples of that seed
    again = post(url, "/v1/completions", **body).json()
    assert [c["text"] for c in again["choices"]] == [c["text"] for c in out["choices"]]
    local = gen.generate_ids(
        [ids], 3, SamplingParams(temperature=1.0, max_new_tokens=6, seed=7, ignore_eos=True)
    )[0]
    assert [g.text for g in local] == [c["text"] for c in out["choices"]]
    other = post(url, "/v1/completions", **{**body, "seed": 8}).json()
    assert [c["text"] for c in other["choices"]] != [c["text"] for c in out["choices"]]


def test_text_prompts_batch_and_logprobs(url):
    resp = post(
        url, "/v1/completions", prompt=["a b c", "d e"], n=2, max_tokens=4, seed=1, logprobs=2
    )
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert [c["index"] for c in out["choices"]] == [0, 1, 2, 3]
    total = 0
    for c in out["choices"]:
        lp = c["logprobs"]
        k = len(lp["tokens"])
        total += k
        assert 1 <= k <= 4
        assert len(lp["token_logprobs"]) == len(lp["top_logprobs"]) == len(lp["text_offset"]) == k
        assert all(v <= 0 for v in lp["token_logprobs"])
        assert all(1 <= len(top) <= 2 for top in lp["top_logprobs"])
    assert out["usage"]["completion_tokens"] == total


def test_logprobs_are_the_models_own(url, gen, tiny_lm):
    import torch

    ids = encode_prefix(gen.tokenizer, Prefix(PROMPT))
    out = post(
        url, "/v1/completions", prompt=ids, max_tokens=3, temperature=0, logprobs=0, ignore_eos=True
    ).json()
    lp = out["choices"][0]["logprobs"]["token_logprobs"]
    with torch.inference_mode():
        logits = tiny_lm(input_ids=torch.tensor([ids])).logits[0, -1].float()
    first = torch.log_softmax(logits, -1)
    assert lp[0] == pytest.approx(float(first.max()), abs=1e-4)  # greedy: the argmax


def test_max_tokens_and_stop_strings(url, smol_tokenizer):
    ids = encode_prefix(smol_tokenizer, Prefix(PROMPT))
    base = dict(prompt=ids, temperature=0, ignore_eos=True)
    full = post(url, "/v1/completions", max_tokens=24, **base).json()["choices"][0]
    assert full["finish_reason"] == "length" and full["stop_reason"] is None
    text = full["text"]
    stop = text[len(text) // 2 : len(text) // 2 + 2]
    assert stop
    cut = post(url, "/v1/completions", max_tokens=24, stop=["\x00never", stop], **base).json()
    choice = cut["choices"][0]
    assert choice["text"] == text[: text.find(stop)]
    assert choice["finish_reason"] == "stop" and choice["stop_reason"] == stop
    assert cut["usage"]["completion_tokens"] < 24  # generation stopped there
    one = post(url, "/v1/completions", max_tokens=1, **base).json()
    assert one["usage"]["completion_tokens"] == 1
    assert one["choices"][0]["finish_reason"] == "length"


def test_chat_shape_and_continue_final_message(url, smol_tokenizer):
    messages = [{"role": "user", "content": PROMPT}]
    resp = post(
        url,
        "/v1/chat/completions",
        messages=messages,
        n=2,
        max_tokens=5,
        seed=3,
        logprobs=True,
        top_logprobs=1,
    )
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["object"] == "chat.completion"
    ids = encode_prefix(smol_tokenizer, Prefix(PROMPT))
    assert out["usage"]["prompt_tokens"] == len(ids)
    for j, c in enumerate(out["choices"]):
        assert c["index"] == j and c["message"]["role"] == "assistant"
        content = c["logprobs"]["content"]
        assert content and all(len(e["top_logprobs"]) == 1 and "bytes" in e for e in content)
    # the chat route renders what /v1/completions gets as token ids: same seed, same samples
    same = post(url, "/v1/completions", prompt=ids, n=2, max_tokens=5, seed=3).json()
    assert [c["text"] for c in same["choices"]] == [c["message"]["content"] for c in out["choices"]]
    # continuing an assistant message tokenizes as encode_prefix does (separator in-text)
    steps = ("2 + 3 = 5.",)
    cont = post(
        url,
        "/v1/chat/completions",
        max_tokens=3,
        temperature=0,
        messages=[*messages, {"role": "assistant", "content": steps[0] + "\n\n"}],
        continue_final_message=True,
        add_generation_prompt=False,
    ).json()
    prefix_ids = encode_prefix(smol_tokenizer, Prefix(PROMPT, steps))
    assert cont["usage"]["prompt_tokens"] == len(prefix_ids)


def test_health_models_and_auth(gen):
    cfg = PolicyServeConfig(model_name="tiny", api_key="sekret")
    with serve_in_thread(create_policy_app(gen, cfg)) as base:
        assert httpx.get(base + "/health").json() == {"status": "ok", "model": "tiny"}
        assert_error(httpx.get(base + "/v1/models"), 401)
        models = httpx.get(base + "/v1/models", headers={"Authorization": "Bearer sekret"})
        assert models.json()["data"][0]["id"] == "tiny"
        resp = httpx.post(
            base + "/v1/completions", json={"prompt": "x"}, headers={"Authorization": "Bearer nope"}
        )
        assert_error(resp, 401, text="wrong API key")


@pytest.mark.parametrize(
    ("route", "body", "status", "param"),
    [
        ("/v1/completions", {"prompt": "x", "stream": True}, 400, "stream"),
        ("/v1/completions", {"prompt": "x", "presence_penalty": 0.5}, 400, "presence_penalty"),
        ("/v1/completions", {"prompt": "x", "logit_bias": {"1": 2.0}}, 400, "logit_bias"),
        ("/v1/completions", {"prompt": "x", "echo": True}, 400, "echo"),
        ("/v1/completions", {"prompt": "x", "best_of": 3}, 400, "best_of"),
        ("/v1/completions", {"prompt": "x", "suffix": "y"}, 400, "suffix"),
        ("/v1/completions", {"prompt": "x", "min_p": 0.1}, 400, "min_p"),
        ("/v1/completions", {"prompt": "x", "n": 0}, 400, "n"),
        ("/v1/completions", {"prompt": "x", "n": 5}, 413, "n"),
        ("/v1/completions", {"prompt": "x", "max_tokens": 65}, 413, "max_tokens"),
        ("/v1/completions", {"prompt": "x", "max_tokens": 0}, 400, "max_tokens"),
        ("/v1/completions", {"prompt": "x", "top_p": 0}, 400, "top_p"),
        ("/v1/completions", {"prompt": "x", "temperature": -1}, 400, "temperature"),
        ("/v1/completions", {"prompt": "x", "top_k": -2}, 400, "top_k"),
        ("/v1/completions", {"prompt": "x", "seed": -1}, 400, "seed"),
        ("/v1/completions", {"prompt": "x", "stop": [""]}, 400, "stop"),
        ("/v1/completions", {"prompt": "x", "logprobs": 21}, 400, "logprobs"),
        ("/v1/completions", {"prompt": ""}, 400, "prompt"),
        ("/v1/completions", {"prompt": []}, 400, "prompt"),
        ("/v1/completions", {"prompt": [10**9]}, 400, "prompt"),
        ("/v1/completions", {"prompt": "x", "model": "other"}, 404, "model"),
        ("/v1/completions", {"prompt": {"a": 1}}, 422, None),
        ("/v1/completions", {}, 422, "prompt"),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]},
            400,
            "tools",
        ),
        ("/v1/chat/completions", {"messages": []}, 400, "messages"),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "tool", "content": "x"}]},
            400,
            "messages[0]",
        ),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "x"}], "continue_final_message": True},
            400,
            "add_generation_prompt",
        ),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2},
            400,
            "top_logprobs",
        ),
        (
            "/v1/chat/completions",
            {
                "messages": [{"role": "user", "content": "x"}],
                "max_tokens": 2,
                "max_completion_tokens": 2,
            },
            400,
            "max_completion_tokens",
        ),
    ],
)
def test_errors_have_our_shape(url, route, body, status, param):
    resp = httpx.post(url + route, json=body, timeout=60)
    assert_error(resp, status, param)


def test_malformed_json_body_limit_and_unknown_route(gen, url):
    resp = httpx.post(
        url + "/v1/completions", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_error(resp, 400, text="malformed JSON")
    assert_error(httpx.get(url + "/v1/embeddings"), 404, text="/v1/chat/completions")
    cfg = PolicyServeConfig(model_name="tiny", max_body_bytes=100)
    with serve_in_thread(create_policy_app(gen, cfg)) as base:
        resp = httpx.post(base + "/v1/completions", json={"prompt": "x" * 200})
        assert_error(resp, 413, text="max_body_bytes")


def test_config_checks():
    from prmkit.errors import ConfigError

    with pytest.raises(ConfigError):
        PolicyServeConfig(default_max_tokens=10, max_tokens_limit=5)
    assert PolicyServeConfig().served_name() == "smollm2"
