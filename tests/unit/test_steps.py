"""Step segmentation: offsets map back to the text and join(split(x)) == x for every strategy."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prmkit.errors import ConfigError
from prmkit.steps import STRATEGIES, join, join_steps, split, split_steps

TEXTS = st.lists(
    st.sampled_from([*"ab 1.2?!\n\t$Step:3#E;", "\n\n", "Step 2:", " e.g. ", "\r\n"]),
    max_size=40,
).map("".join)


def _split(text, strategy):
    return split(text, strategy, pattern=r";\s*" if strategy == "regex" else None)


@settings(max_examples=300, deadline=None)
@given(text=TEXTS, strategy=st.sampled_from(STRATEGIES))
def test_join_of_split_reproduces_the_text(text, strategy):
    assert join(_split(text, strategy)) == text


@settings(max_examples=300, deadline=None)
@given(text=TEXTS, strategy=st.sampled_from(STRATEGIES))
def test_spans_map_steps_back_to_the_text(text, strategy):
    seg = _split(text, strategy)
    assert len(seg.steps) == len(seg.spans) == len(seg.gaps) - 1
    previous_end = 0
    for step, (start, end) in zip(seg.steps, seg.spans, strict=True):
        assert text[start:end] == step
        assert step == step.strip() and step
        assert start >= previous_end
        previous_end = end
    # gaps hold only what is not in a step
    assert sum(len(g) for g in seg.gaps) + sum(len(s) for s in seg.steps) == len(text)


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.text(alphabet="abc 12+=.", min_size=1).map(str.strip).filter(bool), max_size=8
    )
)
def test_split_steps_inverts_join_steps(steps):
    assert split_steps(join_steps(steps)) == steps


@pytest.mark.parametrize(
    ("text", "strategy", "expected"),
    [
        ("a\n\nb", "double_newline", ["a", "b"]),
        ("a\n \n\n b\n", "double_newline", ["a", "b"]),
        ("a\nb\n\nc", "double_newline", ["a\nb", "c"]),
        ("a\nb\n\nc", "single_newline", ["a", "b", "c"]),
        ("   \n\n  ", "double_newline", []),
        ("", "single_newline", []),
        (
            "Intro.\nStep 1: add 2.\nStep 2: done",
            "step_markers",
            ["Intro.", "Step 1: add 2.", "Step 2: done"],
        ),
        ("## Step 1. x\n## Step 2) y", "step_markers", ["## Step 1. x", "## Step 2) y"]),
        ("no markers here", "step_markers", ["no markers here"]),
        (
            "It costs 3.5 dollars. Then e.g. two more! Done? Yes.",
            "sentences",
            ["It costs 3.5 dollars.", "Then e.g. two more!", "Done?", "Yes."],
        ),
        ("Total is $5. $3 more.", "sentences", ["Total is $5.", "$3 more."]),
        ("x=1; y=2;z=3", "regex", ["x=1", "y=2", "z=3"]),
    ],
)
def test_strategies_on_known_texts(text, strategy, expected):
    assert _split(text, strategy).steps == expected


def test_offsets_example():
    text = "Add 2 and 3: 5.\n\nDouble it: 10.\n"
    seg = split(text)
    assert seg.spans == [(0, 15), (17, 31)]
    assert seg.gaps == ["", "\n\n", "\n"]
    assert seg.step_of_offset(20) == 1
    assert seg.step_of_offset(16) == -1


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"strategy": "paragraphs"}, "unknown segmentation strategy"),
        ({"strategy": "regex"}, "needs a separator pattern"),
        ({"strategy": "regex", "pattern": "("}, "invalid regex"),
    ],
)
def test_bad_strategy_arguments(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        split("a b", **kwargs)
