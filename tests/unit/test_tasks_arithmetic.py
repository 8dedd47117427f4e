"""The built-in arithmetic task: generator determinism, gold solutions, and the exact checker.

The regression table holds tricky outputs (hand-written after real model failures, and real
SmolLM2 outputs). Every mis-verified output found later becomes a row.
"""

from __future__ import annotations

import pytest

from prmkit.errors import CheckerError, ConfigError
from prmkit.records import Problem, Trace
from prmkit.steps import split_steps
from prmkit.tasks import (
    arithmetic_problems,
    build_problem,
    check_solution,
    check_steps,
    gold_solution,
    gold_text,
    label_trace,
    make_problem,
    render_prompt,
)

PROBLEMS = {
    # states [54, 108, 9, 17]
    "p1": build_problem(54, [("*", 2), ("-", 99), ("+", 8)], id="p1"),
    # states [1200, 950, 1025]
    "p2": build_problem(1200, [("-", 250), ("+", 75)], id="p2", item="dollars"),
    # states [24, 6, 18, 13]
    "p3": build_problem(24, [("/", 4), ("*", 3), ("-", 5)], id="p3"),
    # states [12, 17, 14]
    "p4": build_problem(12, [("+", 5), ("-", 3)], id="p4"),
}
GOLD1 = ["54 * 2 = 108", "108 - 99 = 9", "9 + 8 = 17", "The answer is 17."]

T, F, N = True, False, None

# (name, problem, steps, per-step correctness, final answer, answer correct)
TABLE = [
    (
        "error then locally correct",
        "p1",
        ["54 * 2 = 116", "116 - 99 = 17", "17 + 8 = 25", "The answer is 25."],
        [F, N, N, N],
        "25",
        False,
    ),
    ("gold short form", "p1", GOLD1, [T, T, T, T], "17", True),
    (
        "wrong operation, right arithmetic",
        "p1",
        ["54 * 2 = 108", "108 + 99 = 207", "207 + 8 = 215", "The answer is 215."],
        [T, F, N, N],
        "215",
        False,
    ),
    (
        "misread number",
        "p1",
        ["54 * 2 = 108", "108 - 90 = 18", "18 + 8 = 26", "The answer is 26."],
        [T, F, N, N],
        "26",
        False,
    ),
    (
        "misread number landing on a later gold value",
        "p4",
        ["He buys 5 more: 12 + 2 = 14", "The answer is 14."],
        [F, N],
        "14",
        True,
    ),
    (
        "error carried forward",
        "p1",
        ["54 * 2 = 108", "108 - 99 = 19", "19 + 8 = 27", "The answer is 27."],
        [T, F, N, N],
        "27",
        False,
    ),
    (
        "merged two operations",
        "p1",
        ["54 * 2 - 99 = 9", "9 + 8 = 17", "The answer is 17."],
        [T, T, T],
        "17",
        True,
    ),
    (
        "merged all with parentheses",
        "p1",
        ["(54 * 2 - 99) + 8 = 17", "The answer is 17."],
        [T, T],
        "17",
        True,
    ),
    (
        "merged via a helper value",
        "p4",
        ["He buys 5 and gives away 3, 5 - 3 = 2, so 12 + 2 = 14", "The answer is 14."],
        [T, T],
        "14",
        True,
    ),
    (
        "commas in numbers",
        "p2",
        ["1,200 - 250 = 950", "950 + 75 = 1,025", "The answer is 1,025."],
        [T, T, T],
        "1025",
        True,
    ),
    (
        "wrong result with commas",
        "p2",
        ["1,200 - 250 = 1,050", "1,050 + 75 = 1,125", "The answer is 1,125."],
        [F, N, N],
        "1125",
        False,
    ),
    (
        "dollar signs and units",
        "p2",
        ["$1,200 - $250 = $950", "950 dollars + 75 dollars = 1025 dollars", "The answer is $1025."],
        [T, T, T],
        "1025",
        True,
    ),
    (
        "x for multiply, units after",
        "p1",
        [
            "54 x 2 = 108 apples",
            "108 apples - 99 apples = 9 apples",
            "9 + 8 = 17",
            "The answer is 17.",
        ],
        [T, T, T, T],
        "17",
        True,
    ),
    ("times sign", "p1", ["54 × 2 = 108", *GOLD1[1:]], [T, T, T, T], "17", True),
    ("middle dot", "p1", ["54 · 2 = 108", *GOLD1[1:]], [T, T, T, T], "17", True),
    (
        "LaTeX times in math delimiters",
        "p1",
        ["\\( 54 \\times 2 = 108 \\)", *GOLD1[1:]],
        [T, T, T, T],
        "17",
        True,
    ),
    ("words: times, equals", "p1", ["54 times 2 equals 108", *GOLD1[1:]], [T, T, T, T], "17", True),
    (
        "division sign and unicode minus",
        "p3",
        ["24 ÷ 4 = 6", "6 × 3 = 18", "18 − 5 = 13", "The answer is 13."],
        [T, T, T, T],
        "13",
        True,
    ),
    (
        "wrong division",
        "p3",
        ["24 / 4 = 8", "8 * 3 = 24", "24 - 5 = 19", "The answer is 19."],
        [F, N, N, N],
        "19",
        False,
    ),
    ("division by zero", "p3", ["24 / 0 = 6", "The answer is 13."], [F, N], "13", True),
    (
        "answer disagrees with the last step",
        "p1",
        [*GOLD1[:3], "The answer is 18."],
        [T, T, T, F],
        "18",
        False,
    ),
    (
        "answer before the last operation",
        "p1",
        ["54 * 2 = 108", "108 - 99 = 9", "The answer is 9."],
        [T, T, F],
        "9",
        False,
    ),
    ("missing answer line", "p1", GOLD1[:3], [T, T, F], None, False),
    (
        "answer inline with the last step",
        "p1",
        [*GOLD1[:2], "9 + 8 = 17, so the answer is 17 apples."],
        [T, T, T],
        "17",
        True,
    ),
    ("Answer: form", "p1", [*GOLD1[:3], "Answer: 17"], [T, T, T, T], "17", True),
    ("boxed answer", "p1", [*GOLD1[:3], "\\boxed{17}"], [T, T, T, T], "17", True),
    (
        "answer without a number",
        "p1",
        [*GOLD1[:3], "The answer is seventeen."],
        [T, T, T, F],
        None,
        False,
    ),
    (
        "answer skips the remaining operations",
        "p1",
        ["54 * 2 = 108", "The answer is 17."],
        [T, T],
        "17",
        True,
    ),
    (
        "repeated step",
        "p1",
        ["54 * 2 = 108", "54 * 2 = 108", *GOLD1[1:]],
        [T, T, T, T, T],
        "17",
        True,
    ),
    (
        "earlier step repeated later",
        "p1",
        ["54 * 2 = 108", "108 - 99 = 9", "54 * 2 = 108", "9 + 8 = 17", "The answer is 17."],
        [T, T, T, T, T],
        "17",
        True,
    ),
    (
        "new equation going back to an earlier value",
        "p1",
        ["54 * 2 = 108", "108 - 99 = 9", "9 + 99 = 108", "The answer is 17."],
        [T, T, F, N],
        "17",
        True,
    ),
    ("restating the question", "p1", ["Tom has 54 apples.", *GOLD1], [T, T, T, T, T], "17", True),
    (
        "value statements without equations",
        "p1",
        [
            "He ends up with 2 times as many: 108",
            "He gives away 99: 9",
            "He buys 8 more: 17",
            "The answer is 17.",
        ],
        [T, T, T, T],
        "17",
        True,
    ),
    (
        "wrong value statement",
        "p1",
        ["He ends up with 2 times as many: 110", "The answer is 17."],
        [F, N],
        "17",
        True,
    ),
    (
        "running total chained through =",
        "p1",
        ["54 * 2 = 108 - 99 = 9", "9 + 8 = 17", "The answer is 17."],
        [F, N, N],
        "17",
        True,
    ),
    (
        "commuted operands",
        "p1",
        ["2 * 54 = 108", "108 - 99 = 9", "8 + 9 = 17", "The answer is 17."],
        [T, T, T, T],
        "17",
        True,
    ),
    (
        "precedence is respected",
        "p1",
        ["54 * 2 - 99 + 8 = 17", "The answer is 17."],
        [T, T],
        "17",
        True,
    ),
    ("precedence mistake", "p4", ["12 + 5 * 3 = 51", "The answer is 14."], [F, N], "14", True),
    (
        "decimal result",
        "p1",
        [*GOLD1[:2], "9 + 8.5 = 17.5", "The answer is 17.5."],
        [T, T, F, N],
        "17.5",
        False,
    ),
    ("malformed equation", "p1", ["54 * = 108", *GOLD1[1:]], [F, N, N, N], "17", True),
    (
        "step markers and numbered lines",
        "p1",
        ["Step 1: 54 * 2 = 108", "2. 108 - 99 = 9", "Step 3: 9 + 8 = 17", "The answer is 17."],
        [T, T, T, T],
        "17",
        True,
    ),
    ("extra step after the answer", "p1", [*GOLD1, "17 + 3 = 20"], [T, T, T, T, F], "17", True),
    (
        "claim-free step after a correct answer is fine",
        "p1",
        [*GOLD1, "Done!"],
        [T, T, T, T, T],
        "17",
        True,
    ),
]


# Real outputs of SmolLM2-135M-Instruct (greedy, 3-shot with gold solutions, prompts from
# prmkit/prompts/arithmetic.txt), on problems rebuilt from their start value and operations.
PROBLEMS.update(
    {
        "r1": build_problem(5, [("+", 10), ("*", 2), ("+", 20), ("*", 2)], id="r1"),
        "r2": build_problem(30, [("+", 25), ("+", 24), ("-", 4)], id="r2"),
        "r3": build_problem(9, [("*", 2), ("-", 4), ("*", 3)], id="r3"),
        "r4": build_problem(7, [("-", 3), ("-", 3), ("+", 4), ("+", 23)], id="r4"),
        "r5": build_problem(22, [("-", 11), ("*", 4)], id="r5"),
        "r6": build_problem(14, [("+", 11), ("-", 24)], id="r6"),
        "r7": build_problem(26, [("-", 1), ("-", 4)], id="r7"),
        "r8": build_problem(10, [("+", 9), ("+", 12), ("-", 2)], id="r8"),
        "r9": build_problem(16, [("+", 1), ("*", 2), ("+", 7)], id="r9"),
        "r10": build_problem(4, [("-", 3), ("+", 8), ("*", 3)], id="r10"),
        "r11": build_problem(29, [("-", 10), ("*", 3)], id="r11"),
    }
)
TABLE += [
    (
        "real: wrong operation lands on a later gold value",
        "r1",
        ["He buys 10 more: 5 * 10 = 50", "He ends up with 2 * 50 = 100", "The answer is 100."],
        [F, N, N],
        "100",
        True,
    ),
    (
        "real: subtracts instead of adding, bad arithmetic",
        "r2",
        ["He gets 25 more: 30 - 25 = 10", "He loses 4: 10 - 4 = 6", "The answer is 6."],
        [F, N, N],
        "6",
        False,
    ),
    (
        "real: operation of a later sentence, true arithmetic",
        "r3",
        [
            "He ends up with 3 times as many: 9 - 3 = 6",
            "He ends up with 3 times as many: 6 * 3 = 18",
            "The answer is 18.",
        ],
        [F, N, N],
        "18",
        False,
    ),
    (
        "real: correct first step, invented second",
        "r4",
        [
            "She sells 3: 7 - 3 = 4",
            "She ends up with 4: 4 + 4 = 8",
            "She gets 23 more: 8 + 23 = 21",
            "The answer is 21.",
        ],
        [T, F, N, N],
        "21",
        False,
    ),
    (
        "real: 22 - 11 = 1",
        "r5",
        [
            "She gives away 11: 22 - 11 = 1",
            "She ends up with 4 times as many: 4 * 4 = 16",
            "She finds 16 more: 16 + 16 = 26",
            "The answer is 26.",
        ],
        [F, N, N, N],
        "26",
        False,
    ),
    (
        "real: right answer by luck after wrong steps",
        "r6",
        ["He gets 11: 14 - 11 = 1", "He loses 24: 14 - 24 = 1", "The answer is 1."],
        [F, N, N],
        "1",
        True,
    ),
    (
        "real: number not in the problem",
        "r7",
        ["She sells 4: 2 * 4 = 8", "She ends up with 2 * 8 = 16", "The answer is 16."],
        [F, N, N],
        "16",
        False,
    ),
    (
        "real: skips the first operation",
        "r8",
        ["Eva gets 12 more: 10 + 12 = 22", "She sells 2: 22 - 2 = 18", "The answer is 18."],
        [F, N, N],
        "18",
        False,
    ),
    (
        "real: stops one operation early",
        "r9",
        [
            "Max gets 1 more: 16 + 1 = 17",
            "He ends up with 2 times as many: 17 * 2 = 34",
            "The answer is 34.",
        ],
        [T, T, F],
        "34",
        False,
    ),
    (
        "real: multiplies the wrong number and lands on the next gold value",
        "r10",
        ["He loses 3: 4 - 3 = 1", "He ends up with 3 times as many: 3 * 3 = 9", "The answer is 9."],
        [T, F, N],
        "9",
        False,
    ),
    (
        "real: multiplies the operand by itself",
        "r11",
        [
            "He gives away 10: 29 - 10 = 19",
            "He ends up with 3 times as many: 3 * 3 = 9",
            "Max has 3 times as many: 9 + 3 = 12",
            "The answer is 12.",
        ],
        [T, F, N, N],
        "12",
        False,
    ),
]


@pytest.mark.parametrize(
    ("problem", "steps", "correct", "final_answer", "answer_correct"),
    [pytest.param(*row[1:], id=row[0]) for row in TABLE],
)
def test_regression_table(problem, steps, correct, final_answer, answer_correct):
    result = check_steps(PROBLEMS[problem], steps)
    assert result.correct == correct, result.reasons
    expected_first = correct.index(False) if False in correct else -1
    assert result.first_error == expected_first
    assert result.final_answer == final_answer
    assert result.answer_correct is answer_correct


def test_table_is_large_enough():
    assert len(TABLE) >= 25


def test_reasons_explain_the_first_error():
    result = check_steps(PROBLEMS["p1"], ["54 * 2 = 116", "116 - 99 = 17"])
    assert "54*2=116" in result.reasons[0] and "108" in result.reasons[0]
    assert result.reasons[1].startswith("not judged")
    assert result.labels == [0.0, None]


def test_require_answer_false_judges_a_prefix():
    result = check_steps(PROBLEMS["p1"], GOLD1[:2], require_answer=False)
    assert result.correct == [True, True] and result.first_error == -1
    assert result.final_answer is None and not result.answer_correct
    assert result.states_reached == [1, 2]


def test_empty_solution_has_no_steps_to_blame():
    result = check_steps(PROBLEMS["p1"], [])
    assert result.correct == [] and result.first_error == -1 and not result.answer_correct


def test_checker_rejects_other_tasks():
    other = Problem(id="g1", prompt="2+2?", answer="4", meta={"task": "gsm8k"})
    with pytest.raises(CheckerError, match="built-in arithmetic problem"):
        check_steps(other, ["2 + 2 = 4"])


# ----------------------------------------------------------------------------- generator


def test_same_seed_same_problems_and_prefix_stability():
    a = [p.to_dict() for p in arithmetic_problems(20, seed=7)]
    b = [p.to_dict() for p in arithmetic_problems(20, seed=7)]
    assert a == b
    assert [p.to_dict() for p in arithmetic_problems(5, seed=7)] == a[:5]
    assert arithmetic_problems(3, seed=7, start_index=4)[0].to_dict() == a[4]
    assert [p.prompt for p in arithmetic_problems(20, seed=8)] != [d["prompt"] for d in a]


@pytest.mark.parametrize("ops", [("+", "-", "*"), ("+", "-", "*", "/"), ("+", "-"), ("*", "/")])
def test_gold_solutions_pass_the_checker(ops):
    problems = arithmetic_problems(500 if len(ops) == 3 else 150, seed=1, ops=ops)
    steps_seen = set()
    for p in problems:
        meta = p.meta
        steps_seen.add(meta["n_steps"])
        states = meta["states"]
        assert len(states) == meta["n_steps"] + 1 == len(meta["ops"]) + 1
        assert len(set(states)) == len(states), "gold states must be distinct"
        assert all(1 <= s <= 300 for s in states) and set(meta["ops"]) <= set(ops)
        assert p.answer == str(states[-1])
        steps = gold_solution(p)
        assert len(steps) == meta["n_steps"] + 1 and steps[-1] == f"The answer is {p.answer}."
        assert split_steps(gold_text(p)) == steps
        result = check_steps(p, steps)
        assert result.first_error == -1 and result.answer_correct, (p.id, result.reasons)
    if len(ops) == 3:
        assert steps_seen == set(range(2, 11))


def test_fixed_step_count_and_ranges():
    for p in arithmetic_problems(
        50, seed=2, n_steps=4, add_range=(1, 9), mul_range=(2, 3), max_value=99
    ):
        assert p.meta["n_steps"] == 4
        for op, n in zip(p.meta["ops"], p.meta["operands"], strict=True):
            assert 1 <= n <= 9 if op in "+-" else 2 <= n <= 3
        assert max(p.meta["states"]) <= 99


def test_gold_step_format():
    p = make_problem(0, 0, n_steps=3)
    steps = gold_solution(p)
    for clause, step in zip(p.meta["clauses"], steps[:-1], strict=True):
        assert step.startswith(clause + ": ")
        assert clause + "." in p.prompt
    assert render_prompt(p).startswith(p.prompt + "\n")
    assert "The answer is N." in render_prompt(p)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"ops": ("+", "^")}, "unknown arithmetic operations"),
        ({"ops": ()}, "unknown arithmetic operations"),
        ({"min_steps": 5, "max_steps": 3}, "bad step range"),
        ({"mul_range": (1, 3)}, "bad mul_range"),
        ({"max_value": 5}, "max_value below"),
        ({"ops": ("/",), "n_steps": 9, "start_range": (7, 7), "max_value": 7}, "cannot generate"),
    ],
)
def test_bad_generator_settings(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        make_problem(0, 0, **kwargs)


def test_build_problem_rejects_inexact_division():
    with pytest.raises(ConfigError, match="not exact"):
        build_problem(10, [("/", 3)], id="x")


# ----------------------------------------------------------------------------- labeling


def test_label_trace_makes_exact_labels():
    p = PROBLEMS["p1"]
    trace = Trace(
        id="t1",
        problem_id="p1",
        prompt=p.prompt,
        steps=["54 * 2 = 108", "108 + 99 = 207", "The answer is 215."],
    )
    labeled = label_trace(p, trace)
    assert labeled.labels == [1.0, 0.0, None]
    assert labeled.first_error == 1 and labeled.label_source == "exact"
    assert labeled.answer == "215"
    assert labeled.meta["exact_check"]["answer_correct"] is False
    assert type(labeled).from_dict(labeled.to_dict()) == labeled


def test_label_trace_refuses_a_mismatched_problem():
    trace = Trace(id="t1", problem_id="other", prompt="", steps=["1 + 1 = 2"])
    with pytest.raises(CheckerError, match="do not match"):
        label_trace(PROBLEMS["p1"], trace)


def test_check_solution_splits_text():
    result = check_solution(PROBLEMS["p1"], "\n\n".join(GOLD1) + "\n")
    assert result.correct == [True] * 4


def test_mutated_gold_solutions_fail_at_the_mutated_step():
    import random

    rng = random.Random(0)
    checked = 0
    for p in arithmetic_problems(300, seed=5, ops=("+", "-", "*", "/")):
        states, ops, operands = p.meta["states"], p.meta["ops"], p.meta["operands"]
        steps = gold_solution(p)
        i = rng.randrange(len(ops))
        kind = rng.choice(["arithmetic", "operation", "number"])
        a, n = states[i], operands[i]
        if kind == "arithmetic":
            steps[i] = f"{a} {ops[i]} {n} = {states[i + 1] + rng.choice([-1, 1, 10])}"
        elif kind == "operation":
            op = rng.choice([o for o in "+-*" if o != ops[i]])
            value = {"+": a + n, "-": a - n, "*": a * n}[op]
            if value in states:
                continue  # lands on a gold value by chance: not a detectable error
            steps[i] = f"{a} {op} {n} = {value}"
        else:
            misread = n + rng.choice([-2, -1, 1, 2])
            value = {
                "+": a + misread,
                "-": a - misread,
                "*": a * misread,
                "/": a / misread if misread else 0,
            }[ops[i]]
            if value in states or misread in p.meta["operands"] or misread in states:
                continue
            steps[i] = f"{a} {ops[i]} {misread} = {value:g}"
        result = check_steps(p, steps)
        assert result.first_error == i, (p.id, kind, steps, result.reasons)
        assert result.correct[:i] == [True] * i and result.correct[i + 1 :] == [None] * (
            len(steps) - i - 1
        )
        checked += 1
    assert checked > 200
