"""Every MATH-500 gold answer verifies against itself and its worked solution (full data)."""

from __future__ import annotations

import pytest

from prmkit.tasks.answers import VerifyStats, check_answer, verify_answer
from prmkit.tasks.math500 import load_math500

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_math500_gold_answers_verify(shared_data):
    stats = VerifyStats()
    problems = load_math500(data_dir=shared_data)
    for p in problems:
        assert verify_answer(p.answer, p.answer, lenient=True, stats=stats), p.answer
        assert check_answer(p, p.meta["solution"], lenient=True, stats=stats), p.id
    assert stats.failures == 0 and stats.correct == 1000
