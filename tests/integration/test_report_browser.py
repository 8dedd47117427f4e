"""``prmkit report`` rendered in headless Chromium: no console errors, a page that fits, a screenshot.

The run folder holds real result JSONs made by the evaluate module's own functions (best-of-N,
step metrics, ProcessBench) on small synthetic scored traces, the labelled traces for the
per-step view, and results of every other kind the report shows (policy, annotation, search vs
best-of-N, in their documented schemas) plus one of an unknown kind. ``prmkit report`` runs as a
subprocess; Chromium opens the page with ``--enable-logging=stderr``, which logs every console
message (``console.*`` calls and uncaught exceptions) as an ``INFO:CONSOLE`` line. The page has no
scripts, so any such line is a failure. A control test checks that this detection works with the
installed Chromium (a page with a deliberate ``console.error`` and an uncaught exception must be
caught).

Layout: a copy of the page with one added script logs the document's scroll width and every
table's width against its box; the page must not scroll sideways at the test's window width and
the best-of-N table (11 columns) must fit the page column without its own scrollbar.

Needs a Chromium binary: Debian's ``chromium`` package (``apt-get install -y chromium``), or a
path in ``PRMKIT_CHROMIUM``. Skipped, with the reason, when there is none.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from prmkit.evaluate.best_of_n import best_of_n, group_problems
from prmkit.evaluate.processbench import evaluate_processbench
from prmkit.evaluate.step_metrics import step_metrics
from prmkit.io import write_json
from prmkit.records import ScoredTrace, write_records

pytestmark = pytest.mark.integration

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
_CONSOLE = re.compile(r":CONSOLE[:(]")
WIDTH, HEIGHT = 1200, 2000


def _chromium() -> str:
    explicit = os.environ.get("PRMKIT_CHROMIUM")
    if explicit:
        return explicit
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        "no Chromium binary found (tried PRMKIT_CHROMIUM and "
        + ", ".join(_CANDIDATES)
        + "); install it with `apt-get install -y chromium`"
    )


def render(page: Path, tmp: Path) -> tuple[Path, list[str], str]:
    """Open ``page`` in headless Chromium; return the screenshot, the console lines, stderr."""
    shot = tmp / f"{page.stem}.png"
    profile = tmp / f"profile-{page.stem}"
    profile.mkdir()
    cmd = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        f"--screenshot={shot}",
        f"--window-size={WIDTH},{HEIGHT}",
        page.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    console = [line for line in proc.stderr.splitlines() if _CONSOLE.search(line)]
    return shot, console, proc.stderr


def png_pixels(path: Path) -> tuple[int, int, bytes]:
    """Width, height and the raw (filtered) scanline bytes of a PNG, read with the stdlib."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, width, height, idat = 8, 0, 0, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


# ----------------------------------------------------------------------------- the run folder


def _traces() -> list[ScoredTrace]:
    """Four problems x eight solutions with labels, correctness and PRM-like scores."""
    rng = random.Random(0)
    traces = []
    for p in range(4):
        for j in range(8):
            n = rng.randint(3, 6)
            first_error = -1 if rng.random() < 0.4 else rng.randrange(n)
            labels: list[float | None] = [
                1.0 if first_error < 0 or i < first_error else 0.0 if i == first_error else None
                for i in range(n)
            ]
            scores = [
                round(min(1.0, max(0.0, (0.8 if lab != 0.0 else 0.3) + rng.gauss(0, 0.12))), 4)
                for lab in labels
            ]
            ok = first_error == -1
            traces.append(
                ScoredTrace(
                    id=f"p{p}-s{j}",
                    problem_id=f"p{p}",
                    prompt=f"Tom has {p + 3} apples and buys {j + 1} more. How many <now>?",
                    steps=[f"step {i}: {p} + {i} = {p + i}" for i in range(n)],
                    answer=str(p + 10) if ok else str(rng.randint(0, 3)),
                    meta={"correct": ok},
                    step_scores=scores,
                    prm="tiny",
                    labels=labels,
                    first_error=first_error,
                    label_source="exact",
                )
            )
    return traces


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    traces = _traces()
    write_records(run / "bon_scored.jsonl", traces)
    write_records(tmp_path / "gsm8k.jsonl", traces)  # a ProcessBench-style subset
    bon = best_of_n(group_problems(traces), n_bootstrap=50, seed=0)
    write_json(run / "bon.json", {"benchmark": "bon", **bon})
    write_json(run / "steps.json", {"benchmark": "steps", **step_metrics(traces, 10)})
    pb = evaluate_processbench(
        [tmp_path / "gsm8k.jsonl"], scores=run / "bon_scored.jsonl", threshold=0.5
    )
    write_json(run / "processbench.json", {"benchmark": "processbench", **pb})
    write_json(run / "policy.json", _policy(traces))
    write_json(run / "annotation.json", _annotation())
    for n, acc, tokens in ((4, 25.0, 240), (16, 50.0, 900)):
        write_json(run / f"beam_n{n}_vs_bon.json", _search_vs_bon(n, acc, tokens))
    write_json(run / "future.json", {"benchmark": "frobnicate", "x": 1})
    return run


def _policy(traces: list[ScoredTrace]) -> dict:
    """The ``policy`` result (docs/evaluate.md) of the traces: 8 samples per problem."""
    first: dict[str, int] = {}
    for t in traces:
        if t.first_error >= 0:
            first[str(t.first_error)] = first.get(str(t.first_error), 0) + 1
    ok = sum(t.first_error == -1 for t in traces)
    return {
        "benchmark": "policy",
        "pass@1": 100 * ok / len(traces),
        "maj@N": 50.0,
        "pass@N": 100.0,
        "n": 8,
        "first_errors": dict(sorted(first.items(), key=lambda kv: int(kv[0]))),
        "traces": len(traces),
    }


def _annotation() -> dict:
    method = ("first_error_acc", "step_acc", "rollouts_per_trace", "tokens_per_trace", "traces")
    return {
        "benchmark": "annotation",
        "reference": "exact",
        "methods": {
            "mc": dict(zip(method, (72.5, 91.0, 24.0, 3120.0, 32), strict=True)),
            "binary": dict(zip(method, (70.0, 90.0, 9.5, 1210.0, 32), strict=True)),
        },
    }


def _search_vs_bon(n: int, accuracy: float, tokens: int) -> dict:
    """A ``search_vs_bon`` result in the schema of ``prmkit.search.compare`` (docs/search.md)."""
    keys = ("policy_prompt_tokens", "policy_completion_tokens", "policy_completions")
    compute = dict(zip(keys, (4 * tokens, 4 * tokens, 4 * n), strict=True))
    compute |= {"generator_calls": 6, "prm_tokens": 9 * tokens, "prm_forward_passes": 6}
    return {
        "benchmark": "search_vs_bon",
        "method": "beam",
        "match": "completion",
        "aggregation": "min",
        "n_problems": 4,
        "settings": {"n": n, "m": 4},
        "search": {"accuracy": accuracy, "n_correct": int(accuracy / 25), "compute": compute},
        "best_of_n": {
            "accuracy_prm": accuracy - 25 / 2,
            "accuracy_majority": accuracy - 25,
            "n_correct_prm": 1,
            "n_correct_majority": 0,
            "n_mean": n / 2,
            "compute": compute,
            "discarded_samples": 2,
        },
        "budget": {"search_tokens": 4 * tokens, "bon_tokens": 4 * tokens - 20, "ratio": 0.98},
        "problems": [],
    }


# ----------------------------------------------------------------------------- tests


def test_console_errors_are_detected(tmp_path):
    """Control: the detection used below sees console.error and uncaught exceptions."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><body><p>x</p><script>console.error('boom-error');"
        "notDefined();</script></body></html>",
        encoding="utf-8",
    )
    _, console, _ = render(bad, tmp_path)
    text = "\n".join(console)
    assert "boom-error" in text and "notDefined" in text


def test_report_renders_in_chromium_without_console_errors(run_dir, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "prmkit.cli", "report", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    page = run_dir / "report.html"
    html = page.read_text(encoding="utf-8")
    for title in ("Policy", "Annotation cost", "ProcessBench", "Step metrics", "Calibration"):
        assert f">{title}<" in html, title
    assert "Best-of-N accuracy" in html and "Search vs best-of-N" in html
    assert "not shown: future.json (benchmark frobnicate)" in html

    shot, console, stderr = render(page, tmp_path)
    assert console == [], "console messages:\n" + "\n".join(console)
    assert shot.exists(), stderr[-2000:]
    assert shot.stat().st_size > 20_000  # a blank 1200x2000 page compresses to a few KB
    width, height, raw = png_pixels(shot)
    assert (width, height) == (WIDTH, HEIGHT)
    # drawn content: many distinct byte values, and non-white pixels in the top and the middle
    assert len(set(raw)) > 50
    row = len(raw) // height
    top = raw[row * 100 : row * 600]
    middle = raw[row * 800 : row * 1400]
    assert any(b < 200 for b in top[1:]) and any(b < 200 for b in middle[1:])
    keep = os.environ.get("PRMKIT_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)


_MEASURE = """<script>
const doc = document.documentElement;
const tables = [...document.querySelectorAll("table")].map(t => {
  const h = t.closest("div").previousElementSibling;
  let title = h;
  while (title && title.tagName !== "H2") title = title.previousElementSibling;
  return [title ? title.textContent : "?", t.offsetWidth, t.parentElement.clientWidth];
});
console.log("LAYOUT " + JSON.stringify({scroll: doc.scrollWidth, client: doc.clientWidth,
  body: document.body.clientWidth, tables}));
</script>"""


def test_report_fits_the_page_width(run_dir, tmp_path):
    """No sideways scrolling of the page; the 11-column best-of-N table fits the column."""
    proc = subprocess.run(
        [sys.executable, "-m", "prmkit.cli", "report", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    probe = tmp_path / "measured.html"
    probe.write_text(page.replace("</body>", _MEASURE + "</body>"), encoding="utf-8")
    _, console, stderr = render(probe, tmp_path)
    lines = [line for line in console if "LAYOUT " in line]
    assert lines, "the measuring script did not log:\n" + stderr[-2000:]
    layout = json.loads(re.search(r"LAYOUT (\{.*\})", lines[0]).group(1).replace('\\"', '"'))
    assert layout["scroll"] <= layout["client"], layout  # the page never scrolls sideways
    assert layout["tables"], layout
    for title, width, box in layout["tables"]:
        assert width <= box, f"table in {title!r} is {width}px wide in a {box}px box"
    assert any(title.startswith("Best-of-N") for title, _, _ in layout["tables"])
