"""``prmkit eval processbench --judge``: ProcessBench's critic vote rule, a served judge, resume.

The served judge is a stdlib HTTP server started here that speaks the OpenAI chat API and
answers like a critic that knows each sample's label (a critic whose answers we control, so the
F1 is known in advance); the client is prmkit's real OpenAIGenerator. The in-process path runs a
tiny random model, whose critiques have no ``\\boxed{}`` answer and so all count as wrong.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from prmkit.cli import main
from prmkit.evaluate.judge_eval import JUDGE_SAMPLING, judge_params, processbench_vote
from prmkit.evaluate.processbench import load_predictions
from prmkit.generate.protocol import SamplingParams


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (["\\boxed{2}"], 2),
        (["first \\boxed{0}, on reflection \\boxed{ 3 }"], 3),  # the last box, stripped
        (["\\boxed{-1}", "\\boxed{1}", "\\boxed{1}"], 1),
        (["\\boxed{1}", "\\boxed{-1}"], 1),  # a tie goes to the answer seen first
        (["\\boxed{-1}", "\\boxed{1}"], -1),
        (["\\boxed{two}", "\\boxed{two}", "\\boxed{1}"], None),  # non-integers win too, then fail
        (["no box", "\\boxed{4}"], 4),  # range is checked by the caller
        (["no box at all"], None),
        ([], None),
    ],
)
def test_processbench_vote(texts, expected):
    assert processbench_vote(texts) == expected


def test_judge_params_follow_processbench():
    greedy = judge_params(1)
    assert (greedy.temperature, greedy.max_new_tokens, greedy.seed) == (0.0, 2048, 42)
    voting = judge_params(8, replace(JUDGE_SAMPLING, max_new_tokens=512))
    assert (voting.temperature, voting.top_p, voting.max_new_tokens) == (1.0, 0.9, 512)
    sampled = SamplingParams(temperature=0.6, top_p=0.95)  # a set temperature is kept
    assert judge_params(8, sampled) == sampled


SAMPLES = [  # (id, steps, label, the critic's answers for its votes)
    ("m0", ["1 + 1 = 2", "The answer is 2."], -1, ["\\boxed{-1}"]),
    ("m1", ["2 * 3 = 7", "The answer is 7."], 0, ["\\boxed{0}"]),
    ("m2", ["4 - 1 = 3", "3 * 2 = 7", "The answer is 7."], 1, ["\\boxed{0}"]),  # wrong
    ("m3", ["5 + 5 = 10", "The answer is 10."], -1, ["I cannot tell."]),  # no answer
    ("m4", ["6 + 1 = 8", "The answer is 8."], 0, ["\\boxed{5}"]),  # past the last step
]


class _Critic(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict]] = []

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(body)
        prompt = body["messages"][-1]["content"]
        first = re.search(r"<paragraph_0>\n(.*?)\n</paragraph_0>", prompt, re.S).group(1)
        answers = next(a for _, steps, _, a in SAMPLES if steps[0] == first)
        choices = [
            {
                "index": j,
                "message": {"role": "assistant", "content": answers[j % len(answers)]},
                "finish_reason": "stop",
            }
            for j in range(body["n"])
        ]
        data = json.dumps(
            {"choices": choices, "usage": {"prompt_tokens": 50, "completion_tokens": 6 * body["n"]}}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def critic_url():
    _Critic.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Critic)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def _data(tmp_path):
    path = tmp_path / "math.json"
    path.write_text(
        json.dumps(
            [
                {"id": i, "problem": f"Problem {i}", "steps": s, "label": lab}
                for i, s, lab, _ in SAMPLES
            ]
        )
    )
    return path


def test_served_judge_f1_resume_and_predictions(tmp_path, critic_url, capsys):
    data, out, preds = _data(tmp_path), tmp_path / "r.json", tmp_path / "preds.jsonl"
    argv = [
        "eval", "processbench", "--data", str(data), "--judge", "critic",
        "--judge-base-url", critic_url, "--output", str(out), "--predictions-out", str(preds),
    ]  # fmt: skip
    assert main(argv) == 0
    result = json.loads(out.read_text())
    math = result["subsets"]["math"]
    # correct samples m0 (right), m3 (no answer); erroneous m1 (right), m2 (wrong), m4 (range)
    assert math["acc_correct"] == pytest.approx(50.0)
    assert math["acc_error"] == pytest.approx(100 / 3)
    assert math["f1"] == pytest.approx(2 * 50 * (100 / 3) / (50 + 100 / 3))
    assert result["threshold"] is None and result["threshold_source"] == "predictions"
    judge = result["judge"]
    assert (judge["n_no_answer"], judge["n_out_of_range"], judge["votes"]) == (1, 1, 1)
    assert judge["prompt_tokens"] == 5 * 50 and judge["completion_tokens"] == 5 * 6
    assert len(_Critic.requests) == 5
    assert all(r["temperature"] == 0.0 and r["n"] == 1 for r in _Critic.requests)
    assert "counted as wrong" in capsys.readouterr().out
    written = load_predictions(preds)
    assert written == {"m0": -1, "m1": 0, "m2": 0, "m3": None, "m4": None}

    # a rerun reads every critique from the store beside --output: no new requests
    assert main(argv) == 0
    assert len(_Critic.requests) == 5
    assert json.loads(out.read_text())["subsets"] == result["subsets"]

    # the written predictions give the same numbers through --predictions
    again = tmp_path / "again.json"
    argv2 = ["eval", "processbench", "--data", str(data), "--predictions", str(preds)]
    assert main([*argv2, "--output", str(again)]) == 0
    assert json.loads(again.read_text())["subsets"] == result["subsets"]


def test_served_judge_voting_samples_n(tmp_path, critic_url):
    data = _data(tmp_path)
    argv = [
        "eval", "processbench", "--data", str(data), "--judge", "critic",
        "--judge-base-url", critic_url, "--judge-votes", "4",
    ]  # fmt: skip
    assert main(argv) == 0
    assert {r["n"] for r in _Critic.requests} == {4}
    assert {(r["temperature"], r["top_p"]) for r in _Critic.requests} == {(1.0, 0.9)}


def test_one_judge_sampling_key_keeps_the_other_judge_defaults(tmp_path, critic_url):
    data = _data(tmp_path)
    argv = [
        "eval", "processbench", "--data", str(data), "--judge", "critic",
        "--judge-base-url", critic_url, "--judge-max-new-tokens", "64",
    ]  # fmt: skip
    assert main(argv) == 0
    assert {(r["temperature"], r["max_tokens"]) for r in _Critic.requests} == {(0.0, 64)}


def test_judge_refuses_a_threshold(tmp_path, capsys):
    data = _data(tmp_path)
    argv = ["eval", "processbench", "--data", str(data), "--judge", "x", "--threshold", "0.5"]
    assert main(argv) == 1
    assert "threshold applies only to --scores" in capsys.readouterr().err


def test_in_process_tiny_judge_counts_unparsable_critiques_as_wrong(tmp_path, tiny_model_dir):
    data, out = _data(tmp_path), tmp_path / "r.json"
    argv = [
        "eval", "processbench", "--data", str(data), "--judge", str(tiny_model_dir),
        "--judge-max-new-tokens", "8", "--output", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert result["judge"]["n_no_answer"] == 5
    assert result["judge"]["completion_tokens"] > 0
    assert result["subsets"]["math"]["f1"] == 0.0


def test_bad_data_fails_before_the_judge_is_loaded(tmp_path, capsys):
    bad = tmp_path / "math.jsonl"
    bad.write_text(
        json.dumps({"id": "x", "problem": "p", "steps": "not a list", "label": 0}) + "\n"
    )
    argv = ["eval", "processbench", "--data", str(bad), "--judge", "no-such-model-dir"]
    assert main(argv) == 1
    assert "bad steps" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\\boxed{3} ... on reflection \\boxed{\\text{none}}", None),  # the last box counts
        ("\\boxed{\\frac{1}{2}} so the error is \\boxed{1}", 1),
        ("paragraph \\boxed{ 2 }", 2),
        ("all fine \\boxed{-1}", -1),
        ("\\boxed{1", None),  # unclosed
        ("\\boxed{7}", None),  # past the last step
    ],
)
def test_verdict_is_the_last_box_as_processbench(text, expected):
    """Issue 11 item 4: the last \\boxed{}, not the last integer one."""
    from prmkit.annotate.judge import parse_verdict

    assert parse_verdict(text, 5) == expected
