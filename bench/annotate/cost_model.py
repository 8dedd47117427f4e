"""Annotation cost model: rollouts and tokens per labelled step, extrapolated to a labelling budget.

Command (the recorded run is in docs/BENCHMARKS.md, "Annotation"):

    .venv/bin/python bench/annotate/cost_model.py bench/annotate/results/cost_20x4_issue16.json \\
        --tokens-per-s 10000 --markdown cost.md --json cost.json

Reads a results file written by ``bench/annotate/run.py`` (``--json``) and prints, for each
annotation method: labelled steps per input trace, rollouts (judge: verdict samples), generated
(policy) tokens and prompt/prefix tokens per labelled step, and for ``--labelled-steps`` labelled
steps (default one million) the total rollouts, generated tokens and prompt tokens, and the
GPU-hours of one generation server (one GPU) at ``--tokens-per-s`` generated tokens per second.

``--tokens-per-s`` is an input, not a measurement: its default (10,000) is a round assumption;
put in the figure of your own server (e.g. a vLLM server's generation throughput for your policy
and lengths). The hours are also shown at the throughput ``run.py`` measured on its own machine
(one timed generator call, ``throughput`` in the results file). Hours count generated tokens
only: prefill is not in them. The prompt tokens are shown so that a user with prefix caching
(every rollout of a state shares its prompt and prefix) can see how much prefill there is.

The per-step costs are measured on the benchmark's problems and policy. They depend on the
policy's accuracy (binary search, OmegaPRM and SCAN spend rollouts on problems they then leave
unlabelled; Monte Carlo labels everything whatever the policy) and on the steps per trace (Monte
Carlo spends ``k`` rollouts on every inner prefix, binary search about ``k * log2(steps)`` per
wrong trace), so the output shows both the steps per trace and each method's coverage.

Example:
    >>> row = {"rollouts_per_step": 2.0, "tokens_per_step": 100.0, "prompt_tokens_per_step": 900.0}
    >>> extrapolate(row, labelled_steps=1_000_000, tokens_per_s=10_000)["hours"]
    2.7777777777777777
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

DEFAULT_TOKENS_PER_S = 10_000.0
"""The default generation throughput: an assumed round figure, not a measurement."""

_PER_STEP = ("rollouts_per_step", "tokens_per_step", "prompt_tokens_per_step")


def extrapolate(
    row: dict[str, Any], *, labelled_steps: float, tokens_per_s: float
) -> dict[str, float | None]:
    """Totals for ``labelled_steps`` labelled steps at ``tokens_per_s`` generated tokens/s.

    ``None`` everywhere when the method labelled no step (nothing to extrapolate from).
    """
    if row["rollouts_per_step"] is None:
        return {"rollouts": None, "policy_tokens": None, "prompt_tokens": None, "hours": None}
    tokens = row["tokens_per_step"] * labelled_steps
    return {
        "rollouts": row["rollouts_per_step"] * labelled_steps,
        "policy_tokens": tokens,
        "prompt_tokens": row["prompt_tokens_per_step"] * labelled_steps,
        "hours": tokens / tokens_per_s / 3600,
    }


def measured_tokens_per_s(results: dict[str, Any]) -> float | None:
    """The generation throughput ``run.py`` timed on its machine (``None`` if it did not)."""
    throughput = results.get("throughput")
    return None if throughput is None else float(throughput["tokens_per_s"])


def cost_rows(
    results: dict[str, Any], *, labelled_steps: float, tokens_per_s: float
) -> list[dict[str, Any]]:
    """One row per method: the measured per-step costs and their extrapolation."""
    measured = measured_tokens_per_s(results)
    out = []
    for method, row in results["rows"].items():
        missing = [key for key in _PER_STEP if key not in row]
        if missing:
            raise SystemExit(
                f"{method}: the results file has no {missing[0]} (written by run.py since "
                "issue 16); rerun bench/annotate/run.py with the same settings and store "
                "(the stored rollouts are reused, so it draws almost nothing)"
            )
        assumed = extrapolate(row, labelled_steps=labelled_steps, tokens_per_s=tokens_per_s)
        local = (
            extrapolate(row, labelled_steps=labelled_steps, tokens_per_s=measured)
            if measured
            else None
        )
        out.append(
            {
                "method": method,
                "first_error_acc": row["first_error_acc"],
                "coverage": row["coverage"],
                "labelled_steps": row["labelled_steps"],
                "labelled_steps_per_trace": row["labelled_steps_per_trace"],
                "rollouts_per_trace": row["rollouts_per_trace"],
                "tokens_per_trace": row["tokens_per_trace"],
                **{key: row[key] for key in _PER_STEP},
                "total": assumed,
                "hours_measured": None if local is None else local["hours"],
            }
        )
    return out


def _big(value: float | None) -> str:
    """1234567 -> '1.23M' (k, M, B, T); ``None`` -> '-'."""
    if value is None:
        return "-"
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _hours(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if value >= 10 else f"{value:.2f}"


Table = tuple[list[str], list[list[str]]]
"""A header and its rows of cells (shared by the text and the markdown output)."""


def tables(
    rows: list[dict[str, Any]], *, tokens_per_s: float, measured: float | None, steps: float
) -> tuple[Table, Table]:
    """The measured per-step costs, and their extrapolation to ``steps`` labelled steps."""
    measured_header = [
        "method",
        "first-err acc",
        "coverage",
        "labelled steps",
        "labelled steps / trace",
        "rollouts / trace",
        "rollouts / labelled step",
        "policy tokens / labelled step",
        "prompt tokens / labelled step",
    ]
    measured_cells = [
        [
            r["method"],
            f"{r['first_error_acc']:.3f}" if r["coverage"] else "-",
            f"{r['coverage']:.2f}",
            str(r["labelled_steps"]),
            f"{r['labelled_steps_per_trace']:.2f}",
            f"{r['rollouts_per_trace']:.1f}",
            _num(r["rollouts_per_step"], 2),
            _num(r["tokens_per_step"], 1),
            _num(r["prompt_tokens_per_step"], 1),
        ]
        for r in rows
    ]
    budget_header = [
        "method",
        f"rollouts for {_big(steps)} steps",
        f"policy tokens for {_big(steps)}",
        f"prompt tokens for {_big(steps)}",
        f"GPU-hours at {tokens_per_s:,.0f} tok/s (assumed)",
        "hours on this CPU at "
        + ("-" if measured is None else f"{measured:,.0f}")
        + " tok/s (measured)",
    ]
    budget_cells = [
        [
            r["method"],
            _big(r["total"]["rollouts"]),
            _big(r["total"]["policy_tokens"]),
            _big(r["total"]["prompt_tokens"]),
            _hours(r["total"]["hours"]),
            _hours(r["hours_measured"]),
        ]
        for r in rows
    ]
    return (measured_header, measured_cells), (budget_header, budget_cells)


def to_markdown(table: Table) -> str:
    """A GitHub markdown table."""
    header, cells = table
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def to_text(table: Table) -> str:
    """Aligned columns for the terminal."""
    header, cells = table
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *cells]
    ]
    return "\n".join(lines) + "\n"


def preamble(results: dict[str, Any], tokens_per_s: float, measured: float | None) -> str:
    """What the numbers were measured on and what is assumed."""
    args = results["args"]
    machine = results.get("machine") or {}
    throughput = results.get("throughput")
    lines = [
        f"source: {args['json']}; policy {args['policy']} + adapter {results['adapter']}; "
        f"{results['n_traces']} traces of {results['steps_per_trace']:g} steps "
        f"(steps per trace: per-step costs depend on it and on the policy's accuracy)",
        f"assumed generation throughput: {tokens_per_s:,.0f} generated tokens/s per server "
        "(an input, not a measurement; set --tokens-per-s to your server's figure)",
    ]
    if throughput is not None:
        lines.append(
            f"measured on this machine ({machine.get('cpu', '?')}, {machine.get('cores', '?')} "
            f"cores, {machine.get('device', '?')}): {measured:,.1f} generated tokens/s "
            f"({throughput['policy_tokens']} tokens of {throughput['sequences']} rollouts in "
            f"{throughput['seconds']:.1f} s, one generator call)"
        )
    lines.append(
        "GPU-hours = generated tokens / throughput / 3600 (prefill not included; the prompt "
        "tokens column is the prefill a server without prefix caching would recompute); judge "
        "rows count verdict samples as rollouts and judge tokens as generated tokens"
    )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", help="a results JSON written by bench/annotate/run.py --json")
    parser.add_argument(
        "--tokens-per-s",
        type=float,
        default=DEFAULT_TOKENS_PER_S,
        help="generated tokens per second of one generation server (default "
        f"{DEFAULT_TOKENS_PER_S:,.0f}: an assumed round figure, not a measurement)",
    )
    parser.add_argument(
        "--labelled-steps", type=float, default=1e6, help="labelled steps to budget for"
    )
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument("--markdown", help="also write the markdown table here")
    args = parser.parse_args()

    results = json.loads(Path(args.results).read_text())
    measured = measured_tokens_per_s(results)
    rows = cost_rows(results, labelled_steps=args.labelled_steps, tokens_per_s=args.tokens_per_s)
    per_step, budget = tables(
        rows, tokens_per_s=args.tokens_per_s, measured=measured, steps=args.labelled_steps
    )
    head = preamble(results, args.tokens_per_s, measured)
    sys.stdout.write(f"{head}\n{to_text(per_step)}\n{to_text(budget)}")
    if args.markdown:
        Path(args.markdown).write_text(
            head.replace("\n", "\n\n") + to_markdown(per_step) + "\n" + to_markdown(budget)
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "source": args.results,
                    "labelled_steps": args.labelled_steps,
                    "tokens_per_s_assumed": args.tokens_per_s,
                    "tokens_per_s_measured": measured,
                    "n_traces": results["n_traces"],
                    "steps_per_trace": results["steps_per_trace"],
                    "machine": results.get("machine"),
                    "rows": rows,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
