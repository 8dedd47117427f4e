"""``prmkit report``: a self-contained page with the plots, tables and sample traces."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from prmkit.cli import main
from prmkit.errors import DataFormatError, PrmkitError
from prmkit.evaluate.report import build_report, render_html, render_markdown, write_report
from prmkit.records import ScoredTrace, write_records

_VOID = {"meta", "br", "img", "input", "link", "hr", "wbr"}


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


def _write(path, data):
    path.write_text(json.dumps(data), encoding="utf-8")


def policy_result(**changes):
    return {
        "benchmark": "policy",
        "pass@1": 31.25,
        "maj@N": 40.0,
        "pass@N": 80.0,
        "n": 16,
        "first_errors": {"0": 2, "1": 4, "3": 1},
        "traces": 160,
        **changes,
    }


def annotation_result():
    return {
        "benchmark": "annotation",
        "reference": "exact",
        "methods": {
            "mc": {
                "first_error_acc": 72.5,
                "step_acc": 91.25,
                "rollouts_per_trace": 24.0,
                "tokens_per_trace": 3120.4,
                "traces": 40,
            },
            "binary": {
                "first_error_acc": 70.0,
                "step_acc": 90.0,
                "rollouts_per_trace": 9.5,
                "tokens_per_trace": 1210.0,
                "traces": 40,
            },
        },
    }


def search_result(method, n, accuracy, tokens, bon_prm, bon_majority):
    """A result in the schema `prmkit search --compare-bon` writes (docs/search.md)."""
    compute = {
        "policy_prompt_tokens": 10 * tokens,
        "policy_completion_tokens": 20 * tokens,
        "policy_completions": 40,
        "generator_calls": 12,
        "prm_tokens": 30 * tokens,
        "prm_forward_passes": 12,
        "prm_steps_scored": 100,
    }
    return {
        "benchmark": "search_vs_bon",
        "method": method,
        "match": "completion",
        "aggregation": "min",
        "n_problems": 20,
        "settings": {"n": n, "m": 4, "k": 4, "seed": 0},
        "search": {"accuracy": accuracy, "n_correct": int(accuracy / 5), "compute": compute},
        "best_of_n": {
            "accuracy_prm": bon_prm,
            "accuracy_majority": bon_majority,
            "n_correct_prm": int(bon_prm / 5),
            "n_correct_majority": int(bon_majority / 5),
            "n_mean": n * 0.75,
            "compute": compute,
            "discarded_samples": 3,
        },
        "budget": {"search_tokens": 20 * tokens, "bon_tokens": 19 * tokens, "ratio": 0.95},
        "problems": [],
    }


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
    scores = str(run / "bon_scored.jsonl")
    for argv in (
        ["eval", "bon", "--scores", scores, "--bootstrap", "20", "--output", str(run / "bon.json")],
        ["eval", "steps", "--scores", scores, "--output", str(run / "steps.json")],
        [
            "eval",
            "processbench",
            "--data",
            str(pb),
            "--scores",
            scores,
            "--threshold",
            "0.5",
            "--output",
            str(run / "pb.json"),
        ],
    ):
        assert main(argv) == 0
    _write(run / "other.json", {"unrelated": 1})  # not a result: ignored
    return run


def _section(page: str, title: str) -> str:
    """The HTML from the <h2> with ``title`` to the next <h2>."""
    start = page.index(f"<h2>{title}")
    end = page.find("<h2>", start + 1)
    return page[start : end if end > 0 else len(page)]


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
    assert "other.json" not in page  # JSON without a "benchmark" key is not a result
    for absent in ("Policy", "Annotation cost", "Search vs best-of-N", "not shown"):
        assert absent not in page
    md = (run_dir / "report.md").read_text()
    assert "| N | pass | majority |" in md and "## ProcessBench" in md
    assert "wrote" in capsys.readouterr().out


def test_wide_tables_scroll_in_their_own_box_and_are_compact(run_dir):
    page = render_html(build_report(run_dir))
    # every table sits in a horizontally scrollable box, so a wide one never widens the page
    assert page.count('<div class="scroll"><table') == page.count("<table") == 3
    assert ".scroll{overflow-x:auto" in page
    bon = _section(page, "Best-of-N")
    assert '<table class="compact">' in bon  # 11 columns
    assert "<th>weighted_<wbr>min</th>" in bon  # long method names may wrap at "_"
    assert '<table class="compact">' not in _section(page, "Step metrics")  # 2 columns


def test_trace_view_marks_true_and_predicted_errors(run_dir):
    report = build_report(run_dir, n_traces=2)
    assert len(report["traces"]) == 2
    assert {t.first_error for t in report["traces"]} & {1, 2}
    page = render_html(report)
    assert page.count("predicted first error</title>") >= 1
    assert 'stroke="#d62728" stroke-width="2"' in page  # a true-first-error frame
    assert build_report(run_dir, n_traces=0)["traces"] == []


def test_write_report_returns_the_paths(run_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    paths = write_report(run_dir, out_dir=out)
    assert paths == [out / "report.html", out / "report.md"]
    assert all(p.stat().st_size > 0 for p in paths)
    assert not (run_dir / "report.html").exists()


def test_report_keys_config_file_and_repeated_traces(run_dir, tmp_path, capsys):
    """RUN_DIR is run_dir=; --traces repeats; a YAML file and key=value set the same keys."""
    out = tmp_path / "by_keys"
    out.mkdir()
    assert main(["report", f"run_dir={run_dir}", "n_traces=0", f"out_dir={out}"]) == 0
    assert "Sample traces" not in (out / "report.html").read_text()
    scored = str(run_dir / "bon_scored.jsonl")
    config = tmp_path / "report.yaml"
    config.write_text(f"n_traces: 2\nout_dir: {out}\n")
    argv = ["report", str(run_dir), "--config", str(config), "--traces", scored]
    assert main([*argv, "--traces", scored]) == 0
    assert (out / "report.html").read_text().count('<div class="trace">') == 2
    assert main(["report"]) == 1
    assert "missing 'run_dir'" in capsys.readouterr().err


def test_empty_run_dir_is_an_error(tmp_path):
    with pytest.raises(PrmkitError, match="no eval results"):
        build_report(tmp_path)
    _write(tmp_path / "x.json", {"benchmark": "frobnicate"})
    with pytest.raises(PrmkitError, match=r"unknown kinds only.*frobnicate"):
        build_report(tmp_path)


# ----------------------------------------------------------------------------- malformed, unknown


def test_malformed_json_is_a_typed_error_naming_the_file(run_dir):
    (run_dir / "sub").mkdir()
    (run_dir / "sub" / "broken.json").write_text("{nope", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"broken\.json:1: malformed JSON"):
        build_report(run_dir)
    assert main(["report", str(run_dir)]) == 1
    assert not (run_dir / "report.html").exists()


@pytest.mark.parametrize(
    ("name", "data", "where"),
    [
        ("pol.json", policy_result(n=None) | {"n": 4, "traces": 1} | {"pass@N": None}, None),
        ("pol2.json", {k: v for k, v in policy_result().items() if k != "n"}, "pol2.json"),
        ("ann.json", {"benchmark": "annotation", "reference": "exact"}, "ann.json"),
        (
            "ann2.json",
            annotation_result() | {"methods": {"mc": {"first_error_acc": 1.0}}},
            "ann2.json methods['mc']",
        ),
        ("s.json", search_result("beam", 8, 40.0, 100, 35.0, 30.0) | {"budget": {}}, "s.json"),
        ("pol3.json", policy_result(first_errors=[1, 2]), "pol3.json field 'first_errors'"),
    ],
)
def test_a_result_missing_fields_is_a_typed_error(run_dir, name, data, where):
    _write(run_dir / name, data)
    if where is None:  # complete, with a null value: shown as a dash
        assert "–" in _section(render_html(build_report(run_dir)), "Policy")
        return
    with pytest.raises(DataFormatError, match=re.escape(where)):
        render_html(build_report(run_dir))


def test_unknown_kinds_are_listed_not_dropped(run_dir):
    _write(run_dir / "later.json", {"benchmark": "frobnicate", "x": 1})
    _write(run_dir / "odd.json", {"benchmark": 3})
    report = build_report(run_dir)
    assert report["not_shown"] == [("later.json", "frobnicate"), ("odd.json", "3")]
    page, md = render_html(report), render_markdown(report)
    for text in (page, md):
        assert "not shown: later.json (benchmark frobnicate)" in text
        assert "not shown: odd.json (benchmark 3)" in text


# ----------------------------------------------------------------------------- policy


def test_policy_section_table_and_first_error_histogram(run_dir):
    _write(run_dir / "policy.json", policy_result())
    page = render_html(build_report(run_dir))
    sec = _section(page, "Policy")
    assert "<th>maj@16 %</th>" in sec and "<th>pass@16 %</th>" in sec
    assert "<td>31.2</td><td>40.0</td><td>80.0</td><td>16</td><td>160</td>" in sec
    assert "7 of 160 samples have a wrong step" in sec and "0: 2, 1: 4, 3: 1" in sec
    bars = re.findall(r'<rect x="[\d.]+" y="[\d.]+" width="24" height="([\d.]+)"', sec)
    heights = [float(h) for h in bars]
    assert len(heights) == 4  # steps 0..3, step 2 empty
    assert heights[1] == max(heights) and heights[2] == 0.0
    assert heights[0] == pytest.approx(heights[1] / 2)
    assert "<title>step 2: 0</title>" in sec
    assert page.index("<h2>Policy") < page.index("<h2>ProcessBench")  # pipeline order
    md = render_markdown(build_report(run_dir))
    assert "## Policy" in md and "| 31.2 | 40.0 | 80.0 | 16 | 160 |" in md


def test_policy_without_wrong_samples_has_no_histogram(run_dir):
    _write(run_dir / "policy.json", policy_result(first_errors={}))
    sec = _section(render_html(build_report(run_dir)), "Policy")
    assert "<svg" not in sec and "first wrong step (0-based): none" in sec


# ----------------------------------------------------------------------------- annotation


def test_annotation_cost_table(run_dir):
    _write(run_dir / "annotation.json", annotation_result())
    report = build_report(run_dir)
    sec = _section(render_html(report), "Annotation cost")
    assert "<td>mc</td><td>72.5</td><td>91.2</td><td>24.0</td><td>3120</td><td>40</td>" in sec
    assert "<td>binary</td><td>70.0</td><td>90.0</td><td>9.5</td><td>1210</td>" in sec
    assert "agreement with the &#x27;exact&#x27; labels" in sec
    md = render_markdown(report)
    assert "## Annotation cost" in md and "| mc | 72.5 | 91.2 | 24.0 | 3120 | 40 |" in md


# ----------------------------------------------------------------------------- search vs best-of-N


def _points(svg: str) -> dict[str, tuple[float, float]]:
    """Marker title -> (x, y) of the circles (search points) of an SVG."""
    found = re.findall(
        r'<circle cx="([\d.]+)" cy="([\d.]+)" r="4" fill="[^"]+"><title>([^<]+)', svg
    )
    return {t: (float(x), float(y)) for x, y, t in found}


def test_search_vs_best_of_n_table_and_token_plot(run_dir):
    _write(run_dir / "beam8.json", search_result("beam", 8, 40.0, 100, 35.0, 30.0))
    beam32 = search_result("beam", 32, 55.0, 400, 50.0, 45.0)
    beam32["search"] |= {"accuracy_weighted": 52.5, "accuracy_majority": 47.5}
    _write(run_dir / "beam32.json", beam32)
    _write(run_dir / "greedy.json", search_result("greedy", 0, 30.0, 50, 25.0, 20.0))
    _write(run_dir / "policy.json", policy_result())
    report = build_report(run_dir)
    page = render_html(report)
    sec = _section(page, "Search vs best-of-N")
    assert "beam32.json, beam8.json, greedy.json" in sec
    # tokens per problem: budget / n_problems (20 * 400 / 20 = 400 search, 380 best-of-N); the
    # search's three answer rules (top PRM score, PRM-weighted vote, majority), "-" when absent
    assert (
        "<td>beam n=32 m=4</td><td>20</td><td>55.0</td><td>52.5</td><td>47.5</td><td>50.0</td>"
        "<td>45.0</td><td>24.0</td><td>400 / 380</td><td>600 / 600</td>"
    ) in sec
    assert "<td>greedy k=4</td><td>20</td><td>30.0</td><td>-</td><td>-</td>" in sec
    assert "<td>greedy k=4</td>" in sec
    assert sec.count("<svg") == 1 and 'aria-label="accuracy vs policy tokens"' in sec
    pts = _points(sec)
    small = next(v for t, v in pts.items() if t.startswith("beam n=8"))
    large = next(v for t, v in pts.items() if t.startswith("beam n=32"))
    assert large[0] > small[0] and large[1] < small[1]  # more tokens: right; more accurate: up
    assert sec.count('<rect x="') >= 3 and sec.count("<path d=") >= 3  # best-of-N markers
    assert "pass@1 (policy.json): 31.2" in sec  # the baseline line's title
    assert "pass@1 (bon.json)" in sec
    assert "curves of bon.json are not on this plot" in sec  # bon results carry no tokens
    assert "tokens matched on completion" in sec and "3 best-of-N samples" in sec
    assert page.index("<h2>Best-of-N") < page.index("<h2>Search vs best-of-N")
    md = render_markdown(report)
    assert "## Search vs best-of-N at equal policy tokens" in md and "| beam n=8 m=4 |" in md


def test_search_section_without_bon_results_has_no_bon_note(tmp_path):
    _write(tmp_path / "s.json", search_result("dvts", 16, 50.0, 200, 45.0, 40.0))
    page = render_html(build_report(tmp_path))
    sec = _section(page, "Search vs best-of-N")
    assert "not on this plot" not in sec and "pass@1 (" not in sec
    assert len(_points(sec)) == 1


def test_best_of_n_token_counts_put_its_curves_on_the_token_plots(run_dir):
    from prmkit.records import read_records

    traces = read_records(run_dir / "bon_scored.jsonl", ScoredTrace)
    for i, t in enumerate(traces):
        t.meta["completion_tokens"] = [10, 20, 30][i % 3]  # 20 tokens per solution on average
    write_records(run_dir / "bon_scored.jsonl", traces)
    out = run_dir / "bon.json"
    scores = str(run_dir / "bon_scored.jsonl")
    assert main(["eval", "bon", "--scores", scores, "--bootstrap", "20", "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["ns"] == [1, 2, 3]
    assert result["policy_tokens"] == {"per_sample": 20.0, "by_n": [20.0, 40.0, 60.0]}
    _write(run_dir / "beam8.json", search_result("beam", 8, 40.0, 100, 35.0, 30.0))
    page = render_html(build_report(run_dir))
    bon = _section(page, "Best-of-N")
    assert bon.count("<svg") == 2 and 'aria-label="accuracy vs policy tokens"' in bon
    assert "prm@N min, N = 3:" in bon
    sec = _section(page, "Search vs best-of-N")
    pts = _points(sec)
    n1 = next(v for t, v in pts.items() if t.startswith("maj@N (bon.json), N = 1:"))
    n3 = next(v for t, v in pts.items() if t.startswith("maj@N (bon.json), N = 3:"))
    assert n3[0] > n1[0]  # three solutions cost more tokens: further right
    assert "not on this plot" not in sec


def test_best_of_n_without_token_counts_says_so(run_dir):
    result = json.loads((run_dir / "bon.json").read_text())
    assert result["policy_tokens"] is None
    assert any("no policy token counts" in n for n in result["notes"])
