"""OpenAIGenerator against a real HTTP server started in the test.

The server is a minimal OpenAI-compatible endpoint written here (stdlib ``http.server`` in a
thread) that serves a tiny random model through :class:`TransformersGenerator`: ``/v1/completions``
(prompt as token ids or text) and ``/v1/chat/completions`` (with vLLM's ``continue_final_message``).
It answers like vLLM: ``n`` choices, ``finish_reason``/``stop_reason``, per-token logprobs, usage.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from test_generate import PREFIXES, biased_lm

from prmkit.generate.chat import render_prefix
from prmkit.generate.openai_backend import OpenAIGenerator, RemoteGeneratorError
from prmkit.generate.protocol import Generator, Prefix, SamplingParams
from prmkit.generate.transformers_backend import TransformersGenerator
from prmkit.steps import split_steps


class _Handler(BaseHTTPRequestHandler):
    backend: TransformersGenerator
    lock = threading.Lock()
    requests: ClassVar[list[dict]] = []

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def _reply(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(body)
        gen = self.backend
        if body.get("model") != "tiny":
            self._reply(
                404,
                {
                    "error": {
                        "message": "model not found",
                        "type": "NotFound",
                        "param": "model",
                        "code": 404,
                    }
                },
            )
            return
        if self.path == "/v1/completions":
            prompt = body["prompt"]
            ids = (
                prompt
                if isinstance(prompt, list)
                else gen.tokenizer.encode(prompt, add_special_tokens=False)
            )
        elif self.path == "/v1/chat/completions":
            messages = body["messages"]
            steps = ()
            if body.get("continue_final_message"):
                steps = tuple(split_steps(messages[-1]["content"]))
                messages = messages[:-1]
            ids = gen.encode(Prefix(messages[-1]["content"], steps))
        else:
            self._reply(
                404,
                {"error": {"message": "no route", "type": "NotFound", "param": None, "code": 404}},
            )
            return
        params = SamplingParams(
            temperature=body["temperature"],
            top_p=body["top_p"],
            top_k=body.get("top_k", 0),
            max_new_tokens=body["max_tokens"],
            seed=body.get("seed"),
            ignore_eos=body.get("ignore_eos", False),
        )
        stop = "step" if "\n\n" in (body.get("stop") or []) else "solution"
        with self.lock:
            out = gen.generate_ids([ids], body["n"], params, stop=stop)[0]
        choices = []
        for j, g in enumerate(out):
            tokens = [gen.tokenizer.convert_ids_to_tokens(t) for t in g.token_ids]
            choice = {
                "index": j,
                "finish_reason": "length" if g.finish_reason == "length" else "stop",
                "stop_reason": "\n\n" if g.finish_reason == "stop" else None,
            }
            if self.path == "/v1/completions":
                choice.update(text=g.text, logprobs={"tokens": tokens})
            else:
                choice.update(
                    message={"role": "assistant", "content": g.text},
                    logprobs={"content": [{"token": t} for t in tokens]},
                )
            choices.append(choice)
        self._reply(
            200,
            {
                "choices": choices,
                "usage": {
                    "prompt_tokens": len(ids),
                    "completion_tokens": sum(len(g.token_ids) for g in out),
                },
            },
        )


@pytest.fixture(scope="module")
def server(smol_tokenizer):
    """A running tiny OpenAI-compatible server; yields (base_url, backend)."""
    backend = TransformersGenerator(biased_lm(smol_tokenizer, eos_bias=11.0), smol_tokenizer)
    handler = type("Handler", (_Handler,), {"backend": backend, "requests": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", backend, handler
    httpd.shutdown()
    httpd.server_close()


def test_is_a_generator():
    assert isinstance(OpenAIGenerator("http://x/v1", "m"), Generator)


def test_token_id_mode_matches_the_served_model(server, smol_tokenizer):
    url, backend, handler = server
    client = OpenAIGenerator(url, "tiny", tokenizer=smol_tokenizer, concurrency=2)
    params = SamplingParams(temperature=1.0, max_new_tokens=20, seed=7)
    out = client.continue_from(PREFIXES, 3, params, stop="step")
    assert [len(g) for g in out] == [3, 3, 3]
    for i, (prefix, group) in enumerate(zip(PREFIXES, out, strict=True)):
        ids = backend.encode(prefix)
        seed = group[0].meta["seed"]
        local = backend.generate_ids(
            [ids], 3, SamplingParams(temperature=1.0, max_new_tokens=20, seed=seed), stop="step"
        )[0]
        for c, g in zip(group, local, strict=True):
            assert c.text == g.text
            assert c.completion_tokens == len(g.token_ids)
            assert c.prompt_tokens == len(ids)
            assert c.finish_reason == g.finish_reason
            assert c.meta["token_count"] == "logprobs"
        assert len({c.meta["seed"] for c in group}) == 1
        assert i == 0 or seed != out[0][0].meta["seed"]  # prefixes get different seeds
    sent = handler.requests[-1]
    assert isinstance(sent["prompt"], list) and sent["stop"] == ["\n\n"]


def test_same_seed_same_samples(server, smol_tokenizer):
    url, _, _ = server
    client = OpenAIGenerator(url, "tiny", tokenizer=smol_tokenizer)
    params = SamplingParams(temperature=1.0, max_new_tokens=8, seed=1)
    first = client.sample(["What is 2+3?"], 2, params)
    assert [c.text for c in first[0]] == [
        c.text for c in client.sample(["What is 2+3?"], 2, params)[0]
    ]


def test_chat_mode_continues_the_assistant_message(server, smol_tokenizer):
    url, backend, handler = server
    client = OpenAIGenerator(url, "tiny")
    prefix = PREFIXES[2]
    out = client.continue_from(
        [prefix], 2, SamplingParams(temperature=0.0, max_new_tokens=10), stop="solution"
    )
    sent = handler.requests[-1]
    assert sent["messages"][-1] == {"role": "assistant", "content": "One.\n\nTwo.\n\n"}
    assert sent["continue_final_message"] is True and sent["add_generation_prompt"] is False
    local = backend.continue_from([prefix], 1, SamplingParams(temperature=0.0, max_new_tokens=10))[
        0
    ][0]
    assert out[0][0].text == local.text and out[0][0].prompt_tokens == len(backend.encode(prefix))
    assert render_prefix(smol_tokenizer, prefix).endswith("One.\n\nTwo.\n\n")


def test_http_error_is_a_typed_error(server):
    url, _, _ = server
    client = OpenAIGenerator(url, "no-such-model", max_retries=0)
    with pytest.raises(RemoteGeneratorError, match="HTTP 404") as info:
        client.sample(["x"], 1, SamplingParams(max_new_tokens=2))
    assert "model not found" in str(info.value)


def test_unreachable_server_is_a_typed_error():
    client = OpenAIGenerator("http://127.0.0.1:9/v1", "tiny", max_retries=0, timeout=2)
    with pytest.raises(RemoteGeneratorError, match="cannot reach the server"):
        client.sample(["x"], 1, SamplingParams(max_new_tokens=2))
