"""``prmkit serve-policy`` as a real process, driven by prmkit's own OpenAI backend
(:class:`~prmkit.generate.openai_backend.OpenAIGenerator`): the listening line, seeds that
reproduce, ``n`` samples, stop strings, ``max_tokens`` -> ``length``, errors, graceful SIGTERM.

The policy is a tiny random Llama over SmolLM2's tokenizer saved as a local directory
(``tiny_model_dir``).
"""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from prmkit.generate.openai_backend import OpenAIGenerator, RemoteGeneratorError
from prmkit.generate.protocol import Prefix, SamplingParams

pytestmark = pytest.mark.integration


def test_openai_backend_against_serve_policy(tiny_model_dir, smol_tokenizer, serving):
    with serving("serve-policy", tiny_model_dir, "model_name=tiny", "max_n=8") as (url, proc):
        assert httpx.get(url + "/health").json() == {"status": "ok", "model": "tiny"}
        assert httpx.get(url + "/v1/models").json()["data"][0]["id"] == "tiny"

        # token-id mode (/v1/completions): seeds reproduce, n samples, max_tokens -> length
        gen = OpenAIGenerator(url + "/v1", "tiny", tokenizer=smol_tokenizer, max_retries=0)
        params = SamplingParams(temperature=1.0, max_new_tokens=5, seed=11, ignore_eos=True)
        prompts = ["What is 2 + 3?", "What is 7 - 4?"]
        first = gen.sample(prompts, n=3, params=params)
        again = gen.sample(prompts, n=3, params=params)
        assert [[c.text for c in g] for g in first] == [[c.text for c in g] for g in again]
        assert [len(g) for g in first] == [3, 3]
        assert len({c.text for c in first[0]}) > 1  # the n samples differ
        for group in first:
            for c in group:
                assert c.finish_reason == "length" and c.completion_tokens == 5
                assert c.meta["token_count"] == "logprobs"
        other = gen.sample(prompts, n=3, params=SamplingParams(**{**params.__dict__, "seed": 12}))
        assert [c.text for c in other[0]] != [c.text for c in first[0]]

        # stop="step" sends the separator as a stop string; a continuation is one step at most
        steps = gen.continue_from(
            [Prefix(prompts[0], ("2 + 3 = 5.",))], n=2, params=params, stop="step"
        )
        assert all("\n\n" not in c.text for c in steps[0])

        # chat mode (/v1/chat/completions, no local tokenizer); counts from chat logprobs
        chat = OpenAIGenerator(url + "/v1", "tiny", max_retries=0)
        out = chat.sample(prompts[:1], n=2, params=params)[0]
        assert len(out) == 2 and all(c.completion_tokens == 5 for c in out)
        assert [c.text for c in chat.sample(prompts[:1], n=2, params=params)[0]] == [
            c.text for c in out
        ]

        # stop strings over plain HTTP: cut before the stop, finish_reason stop
        body = {
            "model": "tiny",
            "prompt": "a b c",
            "max_tokens": 16,
            "temperature": 0,
            "ignore_eos": True,
        }
        full = httpx.post(url + "/v1/completions", json=body, timeout=60).json()["choices"][0]
        text = full["text"]
        stop = text[len(text) // 2 : len(text) // 2 + 2]
        cut = httpx.post(url + "/v1/completions", json={**body, "stop": stop}, timeout=60).json()
        assert cut["choices"][0]["text"] == text[: text.find(stop)]
        assert cut["choices"][0]["finish_reason"] == "stop"

        # errors: our shape; the client reports them without retrying
        with pytest.raises(RemoteGeneratorError, match="HTTP 404"):
            OpenAIGenerator(url + "/v1", "other", tokenizer=smol_tokenizer).sample(
                prompts[:1], n=1, params=params
            )
        with pytest.raises(RemoteGeneratorError, match="HTTP 413"):
            gen.sample(prompts[:1], n=9, params=params)
        resp = httpx.post(url + "/v1/completions", json={**body, "stream": True})
        assert resp.status_code == 400
        assert resp.json()["error"]["param"] == "stream"
    assert proc.returncode == 0  # SIGTERM: a graceful stop


def test_taken_port_and_missing_model_fail_cleanly(tmp_path):
    missing = tmp_path / "nope"
    result = subprocess.run(
        [sys.executable, "-m", "prmkit", "serve-policy", "--model", str(missing), "port=0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "prmkit serve-policy: error" in result.stderr
    assert result.stdout == ""
