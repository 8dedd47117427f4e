"""GSM8K / MATH-500 loaders on the real files (the shipped sample everywhere, the full shared
copies when present), and final-answer extraction and checking."""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time

import pytest

from prmkit.errors import CheckerError, DataFormatError
from prmkit.tasks import gold_solution
from prmkit.tasks.answers import (
    VerifyStats,
    check_answer,
    extract_answer,
    extract_boxed,
    verify_answer,
)
from prmkit.tasks.data import DATA_ENV
from prmkit.tasks.gsm8k import gold_steps, load_gsm8k
from prmkit.tasks.math500 import load_math500

# ----------------------------------------------------------------------------- loaders

# problems per split: the shipped sample (tests/fixtures/data) and the full shared copies
COUNTS = {
    "sample": {"train": 4, "test": 3, "math500": 5, "levels": {2, 3, 5}},
    "full": {"train": 7473, "test": 1319, "math500": 500, "levels": {1, 2, 3, 4, 5}},
}


@pytest.mark.parametrize("split", ["train", "test"])
def test_gsm8k_counts_and_fields(real_data, split):
    name, root = real_data
    problems = load_gsm8k(split, data_dir=root)
    count = COUNTS[name][split]
    assert len(problems) == count
    assert len({p.id for p in problems}) == count
    for p in problems:
        assert re.fullmatch(r"-?\d+(\.\d+)?", p.answer), p.answer
        assert p.meta["gold_steps"] and not any("<<" in s for s in p.meta["gold_steps"])


def test_gsm8k_first_test_problem(real_data):
    p = load_gsm8k("test", data_dir=real_data[1], limit=1)[0]
    assert p.id == "gsm8k-test-0" and p.answer == "18"
    assert p.prompt.startswith("Janet")
    assert gold_solution(p) == [
        "Janet sells 16 - 3 - 4 = 9 duck eggs a day.",
        "She makes 9 * 2 = $18 every day at the farmer’s market.",
        "The answer is 18.",
    ]


def test_gsm8k_answers_with_commas_are_normalized(real_data):
    answers = {p.answer for p in load_gsm8k("train", data_dir=real_data[1])}
    assert "1080" in answers and not any("," in a for a in answers)


def test_gsm8k_gold_solutions_check_correct(real_data):
    name, root = real_data
    stats = VerifyStats()
    for p in load_gsm8k("test", data_dir=root):
        assert check_answer(p, "\n\n".join(gold_solution(p)), stats=stats), p.id
    assert stats.correct == stats.calls == COUNTS[name]["test"] and stats.failures == 0


def test_math500_count_and_fields(real_data):
    name, root = real_data
    problems = load_math500(data_dir=root)
    assert len(problems) == COUNTS[name]["math500"]
    assert problems[0].answer == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert problems[0].meta["unique_id"] == "test/precalculus/807.json"
    assert {p.meta["level"] for p in problems} == COUNTS[name]["levels"]
    assert load_math500(data_dir=root, limit=3) == problems[:3]


def test_math500_gold_answers_verify_on_the_sample(sample_data):
    """The full-data run (500 problems, ~15 s) is in tests/integration/test_tasks_data_full.py."""
    stats = VerifyStats()
    for p in load_math500(data_dir=sample_data):
        assert verify_answer(p.answer, p.answer, lenient=True, stats=stats), p.answer
        assert check_answer(p, p.meta["solution"], lenient=True, stats=stats), p.id
    assert stats.failures == 0 and stats.correct == 10


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_data_dir_from_environment(tmp_path, monkeypatch):
    _write(
        tmp_path / "gsm8k" / "test.jsonl",
        [{"question": "1+1?", "answer": "1+1=<<1+1=2>>2\n#### 2"}],
    )
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    (p,) = load_gsm8k("test")
    assert p.answer == "2" and p.meta["gold_steps"] == ["1+1=2"]


def test_missing_data_names_the_places_tried(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    with pytest.raises(DataFormatError, match="data file not found") as info:
        load_math500()
    assert str(tmp_path / "math500" / "test.jsonl") in str(info.value)
    assert DATA_ENV in str(info.value)


def test_malformed_gsm8k_line_names_file_and_line(tmp_path):
    _write(
        tmp_path / "gsm8k" / "train.jsonl",
        [{"question": "a", "answer": "b\n#### 1"}, {"question": "c", "answer": "no final"}],
    )
    with pytest.raises(DataFormatError, match=r"train\.jsonl:2") as info:
        load_gsm8k("train", data_dir=tmp_path)
    assert "#### N" in str(info.value)


def test_malformed_math500_line(tmp_path):
    _write(tmp_path / "math500" / "test.jsonl", [{"problem": "x?", "answer": "1"}])
    with pytest.raises(DataFormatError, match=r"test\.jsonl:1.*not a MATH-500 record"):
        load_math500(data_dir=tmp_path)


def test_unknown_split():
    with pytest.raises(DataFormatError, match="unknown GSM8K split"):
        load_gsm8k("dev")


def test_gold_steps_strip_calculator_annotations():
    text = "He pays 3*4=<<3*4=12>>12 dollars.\n\nThen 12+1=<<12+1=13>>13.\n#### 13"
    assert gold_steps(text) == ["He pays 3*4=12 dollars.", "Then 12+1=13."]


# ----------------------------------------------------------------------------- answers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
        ("\\boxed{1} then \\boxed{\\{a, b\\}}", "\\{a, b\\}"),
        ("\\fbox{7}", "7"),
        ("\\boxed{unclosed", None),
        ("no box", None),
    ],
)
def test_extract_boxed(text, expected):
    assert extract_boxed(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12 + 5 = 17\n\nThe answer is 17.", "17"),
        ("The answer is $1,200.", "1200"),
        ("The final answer is 14 apples.", "14"),
        ("Answer: 3.5", "3.5"),
        ("#### 1,234", "1234"),
        ("The answer is 5.\n\nThe answer is 6.", "6"),
        ("We get $\\boxed{42}$. The answer is 41.", "42"),
        ("The final answer is $\\boxed{\\dfrac{3}{4}}$", "\\dfrac{3}{4}"),
        ("The answer is x + 1.", "x + 1"),
        ("so the answer is $\\frac{3}{4}$.", "\\frac{3}{4}"),
        ("12 + 5 = 17", None),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_extract_answer_last_number_fallback_is_explicit():
    assert extract_answer("so 12 + 1,005 = 1,017") is None
    assert extract_answer("so 12 + 1,005 = 1,017", last_number=True) == "1017"


@pytest.mark.parametrize(
    ("pred", "gold", "same"),
    [
        ("\\frac{1}{2}", "0.5", True),
        ("0.5", "\\frac12", True),
        ("1/2", "0.5", True),
        ("\\dfrac{1}{2}", "\\frac{1}{2}", True),
        ("$1,200", "1200", True),
        ("1200.0", "1200", True),
        ("\\$32,\\!348", "32348", True),
        ("x^2 + 1", "1 + x^{2}", True),
        ("10\\sqrt{2}", "\\sqrt{200}", True),
        ("\\{1, 2\\}", "\\{2, 1\\}", True),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "\\left( 3, \\frac{\\pi}{2} \\right)", True),
        ("\\boxed{x^2}", "x^{2}", True),
        ("3", "4", False),
        ("\\frac{1}{3}", "0.33", False),
        ("x + 2", "x + 1", False),
    ],
)
def test_verify_answer_equivalences(pred, gold, same):
    assert verify_answer(pred, gold) is same


def test_no_answer_is_wrong_not_a_failure():
    stats = VerifyStats()
    assert not verify_answer(None, "3", stats=stats)
    assert not verify_answer("  ", "3", stats=stats)
    assert stats.no_answer == 2 and stats.failures == 0 and stats.calls == 2


def test_strict_mode_raises_and_lenient_counts():
    with pytest.raises(CheckerError, match="cannot parse the gold answer"):
        verify_answer("1", "")
    stats = VerifyStats()
    assert not verify_answer("1", "", lenient=True, stats=stats)
    assert stats.gold_unparsed == 1 and stats.failures == 1
    assert "1 failures (1 gold unparsed" in stats.summary()


def _heavy(k: int) -> tuple[str, str]:
    """A pair math-verify needs more than 1 s to compare (uncached: k differs).

    Not larger: sympy expands a power in long C calls that a SIGALRM deadline cannot interrupt
    until they return (an exponent of 20000 once held the unit run for over 10 minutes).
    """
    return f"(x+{k})^{{3000}}", f"x^{{3000}}+{k}"


def test_timeout_is_enforced_and_counted():
    """A timeout raises (strict) or is counted and returns False (lenient).

    math-verify's comparison can settle a pair early by chance (one CI run saw a heavy pair
    finish inside 1 s), so each mode gets three distinct heavy pairs and must time out on at
    least one; every timeout is counted exactly once.
    """
    stats = VerifyStats()
    raised = 0
    for k in (1, 2, 3):
        try:
            assert not verify_answer(*_heavy(k), timeout_s=1, stats=stats)
        except CheckerError as exc:
            assert "timed out after 1 s" in str(exc)
            raised += 1
            break
    assert raised == 1 and stats.timeouts == 1
    calls = stats.calls
    results = [verify_answer(*_heavy(k), timeout_s=1, lenient=True, stats=stats) for k in (4, 5, 6)]
    assert results == [False, False, False] and stats.calls == calls + 3
    assert 2 <= stats.timeouts <= 4 and stats.to_dict()["timeouts"] == stats.timeouts
    assert stats.errors == 0


def test_outside_the_main_thread_runs_untimed_and_says_so():
    stats = VerifyStats()
    result: list[bool] = []
    worker = threading.Thread(
        target=lambda: result.append(verify_answer("\\frac{1}{2}", "0.5", stats=stats))
    )
    worker.start()
    worker.join()
    assert result == [True] and stats.untimed == 1
    assert "without timeout" in stats.summary()


def test_timeout_cannot_be_swallowed_by_an_except_exception_block(monkeypatch):
    """math-verify's TimeoutException is an Exception: sympy code that catches Exception swallowed
    it and the check ran on unbounded (a hang seen in the full test run). prmkit's deadline is a
    BaseException, so a comparison that catches every Exception still stops at the timeout."""
    import math_verify

    def swallowing_verify(*args, **kwargs):
        end = time.monotonic() + 5
        while time.monotonic() < end:
            with contextlib.suppress(Exception):  # what sympy does around many computations
                time.sleep(0.01)
        return True

    monkeypatch.setattr(math_verify, "verify", swallowing_verify)
    stats = VerifyStats()
    started = time.monotonic()
    assert verify_answer("x^2", "x^{2}+0*y", timeout_s=1, lenient=True, stats=stats) is False
    assert time.monotonic() - started < 3 and stats.timeouts == 1
