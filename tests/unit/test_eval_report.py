"""``prmkit report``: a self-contained page with the plots, tables and sample traces."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from prmkit.cli import main
from prmkit.errors import PrmkitError
from prmkit.evaluate.report import build_report, render_html
from prmkit.records import ScoredTrace, write_records

_VOID = {"meta", "br", "img", "input", "link", "hr"}


class _Checker(HTMLParser):
    """Counts tags, checks nesting, collects external references."""

    def __init__(self):
        super().__init__()
        self.stack, self.counts, self.external = [], {}, []

    def handle_starttag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1
        self.external += [v for k, v in attrs if k in ("src", "href") and v]
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()


@pytest.fixture
def run_dir(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    traces = []
    for p in range(4):
        for j, (ans, ok, sc, labels, fe) in enumerate(
            [
                ("1", True, [0.9, 0.8, 0.85], [1.0, 1.0, 1.0], -1),
                ("2", False, [0.9, 0.3, 0.2], [1.0, 0.0, None], 1),
                ("<b>3</b>", False, [0.7, 0.6, 0.1], [1.0, 1.0, 0.0], 2),
            ]
        ):
            traces.append(
                ScoredTrace(
                    id=f"p{p}/{j}",
                    problem_id=f"p{p}",
                    prompt="What <i>&</i> why?",
                    steps=["a", "b", "c"],
                    step_scores=sc,
                    prm="t",
                    answer=ans,
                    meta={"correct": ok},
                    labels=labels,
                    first_error=fe,
                )
            )
    write_records(run / "bon_scored.jsonl", traces)
    pb = run / "demo.jsonl"
    write_records(pb, traces)
    assert (
        main(
            [
                "eval",
                "bon",
                "--scores",
                str(run / "bon_scored.jsonl"),
                "--bootstrap",
                "20",
                "--output",
                str(run / "bon.json"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "eval",
                "steps",
                "--scores",
                str(run / "bon_scored.jsonl"),
                "--output",
                str(run / "steps.json"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "eval",
                "processbench",
                "--data",
                str(pb),
                "--scores",
                str(run / "bon_scored.jsonl"),
                "--threshold",
                "0.5",
                "--output",
                str(run / "pb.json"),
            ]
        )
        == 0
    )
    (run / "other.json").write_text(json.dumps({"unrelated": 1}))
    (run / "broken.json").write_text("{nope")
    return run


def test_report_page_is_self_contained_and_complete(run_dir, capsys):
    assert main(["report", str(run_dir)]) == 0
    page = (run_dir / "report.html").read_text()
    checker = _Checker()
    checker.feed(page)
    assert checker.stack == []
    assert checker.external == [] and "<script" not in page
    assert checker.counts["svg"] == 2 + 6  # accuracy vs N, calibration, six sample traces
    assert "ProcessBench" in page and "Best-of-N" in page and "AUROC" in page
    assert "What &lt;i&gt;&amp;&lt;/i&gt; why?" in page and "<i>" not in page  # escaped
    assert "threshold 0.5 (given)" in page
    assert "broken.json" in page  # unreadable files are listed, not silently dropped
    md = (run_dir / "report.md").read_text()
    assert "| N | pass | majority |" in md and "## ProcessBench" in md


def test_trace_view_marks_true_and_predicted_errors(run_dir):
    report = build_report(run_dir, n_traces=2)
    assert {t.first_error for t in report["traces"]} & {1, 2}
    page = render_html(report)
    assert page.count("predicted first error</title>") >= 1
    assert 'stroke="#d62728" stroke-width="2"' in page  # a true-first-error frame


def test_empty_run_dir_is_an_error(tmp_path):
    with pytest.raises(PrmkitError, match="no eval results"):
        build_report(tmp_path)
