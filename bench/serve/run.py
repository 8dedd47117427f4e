"""Load and fault benchmark of ``prmkit serve``: a real server process on loopback.

Command (from the repo root):

    .venv/bin/python bench/serve/run.py                  # 2,000 requests, 64 clients
    .venv/bin/python bench/serve/run.py --requests 400    # a shorter run
    .venv/bin/python bench/serve/run.py --json out.json   # also write the results

What it does, in one run:

1. Builds a small random-weight token-classification PRM (Llama shape, ``--hidden`` 256,
   ``--layers`` 4 by default, the SmolLM2 vocabulary; nothing downloaded), saves it, and starts ``prmkit serve`` on it as a
   subprocess on 127.0.0.1 (one torch thread: the other core drives the load).
2. Traces of realistic lengths: ProcessBench MATH (``../shared/data/processbench/math.json``),
   cut to 512 tokens, one trace per ``POST /v1/score`` request. Reference scores come from
   ``PRMScorer`` in this process.
3. **Sequential**: one client, one request at a time. **Concurrent**: 64 clients, 2,000
   requests. Every response is checked against the reference scores of its own trace (a lost or
   mixed-up response is an error); throughput ratio, p50/p99 latency.
4. **Faults**, interleaved with good traffic: clients that disconnect mid-request, oversized
   bodies, malformed JSON, wrong types, and the same request retried 16 times at once (veRL's
   retry count). Each must get its own clear answer, the good traffic must stay correct, and the
   server's resident memory (``/proc/PID/status`` VmRSS) is read before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from prmkit.errors import DataFormatError
from prmkit.models.loading import load_tokenizer
from prmkit.models.precision import describe_machine
from prmkit.prm import PRMSpec
from prmkit.prm.checkpoint import save_prm
from prmkit.records import Trace
from prmkit.score import PRMScorer
from prmkit.serve import serve_process
from prmkit.testing import build_tiny_lm
from prmkit.train.loop import build_prm

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "processbench" / "math.json"


def build_checkpoint(folder: Path, hidden: int, layers: int) -> Path:
    """A random tokcls PRM on a small Llama with the SmolLM2 tokenizer, saved as a checkpoint."""
    tok = load_tokenizer("smollm2")
    base = folder / "base"
    build_tiny_lm(len(tok), hidden=hidden, layers=layers).save_pretrained(base)
    tok.save_pretrained(base)
    prm = build_prm(PRMSpec.from_format("trl", head="tokcls", max_length=512), str(base), seed=0)
    return save_prm(prm, folder / "prm")


def load_traces(scorer: PRMScorer, n: int) -> list[Trace]:
    """ProcessBench traces whose steps fit 512 tokens (steps dropped from the end until they do)."""
    rows = json.loads(DATA.read_text(encoding="utf-8"))
    out = []
    for r in rows:
        steps = list(r["steps"])
        while steps:
            t = Trace(id=str(r["id"]), problem_id=str(r["id"]), prompt=r["problem"], steps=steps)
            try:
                scorer.encode(t)
            except DataFormatError:  # steps cut at max_length: drop the last one, try again
                steps = steps[:-1]
                continue
            out.append(t)
            break
        if len(out) >= n:
            break
    return out


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` in KiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def body(trace: Trace) -> dict[str, Any]:
    return {"prompt": trace.prompt, "steps": trace.steps}


def close(a: list[float], b: list[float], tol: float = 1e-5) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


async def run_load(
    url: str, traces: list[Trace], ref: list[list[float]], n: int, clients: int
) -> dict[str, Any]:
    """``n`` requests from ``clients`` concurrent clients; every answer checked."""
    order = [i % len(traces) for i in range(n)]
    random.Random(0).shuffle(order)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in order:
        queue.put_nowait(i)
    latencies: list[float] = []
    errors: list[str] = []

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            while not queue.empty():
                i = queue.get_nowait()
                start = time.perf_counter()
                try:
                    r = await http.post("/v1/score", json=body(traces[i]))
                except httpx.HTTPError as exc:
                    errors.append(f"transport: {exc!r}")
                    continue
                latencies.append(time.perf_counter() - start)
                if r.status_code != 200:
                    errors.append(f"status {r.status_code}: {r.text[:200]}")
                elif not close(r.json()["traces"][0]["step_scores"], ref[i]):
                    errors.append(f"wrong scores for trace {i}")

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    seconds = time.perf_counter() - start
    lat = sorted(latencies)
    return {
        "requests": n,
        "clients": clients,
        "seconds": seconds,
        "requests_per_s": n / seconds,
        "p50_ms": 1000 * lat[len(lat) // 2] if lat else None,
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None,
        "errors": len(errors),
        "first_errors": errors[:5],
    }


async def run_faults(url: str, traces: list[Trace], ref: list[list[float]]) -> dict[str, Any]:
    """Each fault once per round, good requests in between; what each fault got back."""
    seen: dict[str, list[int]] = {}

    def note(kind: str, status: int) -> None:
        seen.setdefault(kind, []).append(status)

    good_errors = 0
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        for round_ in range(25):
            t = round_ % len(traces)
            # a client that gives up mid-request (the server must carry on)
            try:
                await http.post("/v1/score", json=body(traces[t]), timeout=0.002)
                note("disconnect", 200)
            except httpx.TimeoutException:
                note("disconnect", -1)
            r = await http.post(
                "/v1/score",
                content=b'{"prompt": "' + b"x" * 9_000_000 + b'", "steps": ["a"]}',
                headers={"content-type": "application/json"},
            )
            note("oversized body", r.status_code)
            r = await http.post(
                "/v1/score",
                content=b'{"prompt": "a", "steps": [',
                headers={"content-type": "application/json"},
            )
            note("malformed JSON", r.status_code)
            r = await http.post("/v1/score", json={"prompt": 3, "steps": "not a list"})
            note("wrong types", r.status_code)
            # the same request retried 16 times at once: 16 identical, correct answers
            same = await asyncio.gather(
                *(http.post("/v1/score", json=body(traces[t])) for _ in range(16))
            )
            note("retried x16", max(r.status_code for r in same))
            if not all(
                r.status_code == 200 and close(r.json()["traces"][0]["step_scores"], ref[t])
                for r in same
            ):
                good_errors += 1
            r = await http.post("/v1/score", json=body(traces[t]))
            if r.status_code != 200 or not close(r.json()["traces"][0]["step_scores"], ref[t]):
                good_errors += 1
        health = (await http.get("/health")).status_code
    return {
        "statuses": {k: sorted(set(v)) for k, v in seen.items()},
        "rounds": 25,
        "good_request_errors": good_errors,
        "health_after": health,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--sequential", type=int, default=200, help="requests in the 1-client run")
    parser.add_argument("--hidden", type=int, default=256, help="model width")
    parser.add_argument("--layers", type=int, default=4, help="model depth")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    print("machine:", describe_machine())
    with tempfile.TemporaryDirectory(prefix="prmkit-bench-serve-") as tmp:
        folder = Path(tmp)
        ckpt = build_checkpoint(folder, args.hidden, args.layers)
        print(f"model: random Llama tokcls PRM, hidden {args.hidden}, {args.layers} layers")
        scorer = PRMScorer.from_checkpoint(str(ckpt), batch_size=16)
        traces = load_traces(scorer, 1000)
        ref = scorer.score(traces)
        lengths = [len(scorer.encode(t).input_ids) for t in traces]
        print(
            f"{len(traces)} ProcessBench traces, {statistics.mean(lengths):.0f} tokens on average "
            f"(max {max(lengths)}), {sum(len(t.steps) for t in traces)} steps"
        )
        keys = ["max_batch_traces=32", "max_wait_ms=5", "max_queue=4096"]
        with serve_process(str(ckpt), keys, threads=1, stderr=folder / "server.log") as (
            url,
            proc,
        ):
            sequential = asyncio.run(run_load(url, traces, ref, args.sequential, 1))
            rss_before = rss_kib(proc.pid)
            concurrent = asyncio.run(run_load(url, traces, ref, args.requests, args.clients))
            rss_load = rss_kib(proc.pid)
            faults = asyncio.run(run_faults(url, traces, ref))
            rss_after = rss_kib(proc.pid)
            metrics = httpx.get(f"{url}/metrics").text
        code = proc.returncode
    ratio = concurrent["requests_per_s"] / sequential["requests_per_s"]
    results = {
        "machine": describe_machine(),
        "sequential": sequential,
        "concurrent": concurrent,
        "throughput_ratio": ratio,
        "faults": faults,
        "rss_kib": {"before_load": rss_before, "after_load": rss_load, "after_faults": rss_after},
        "server_exit_code": code,
        "batch_metrics": [
            line for line in metrics.splitlines() if "batch" in line and not line.startswith("#")
        ][:12],
    }
    print(
        f"sequential (1 client, {sequential['requests']} requests): "
        f"{sequential['requests_per_s']:.1f} req/s, p50 {sequential['p50_ms']:.1f} ms, "
        f"p99 {sequential['p99_ms']:.1f} ms, errors {sequential['errors']}"
    )
    print(
        f"concurrent ({args.clients} clients, {concurrent['requests']} requests): "
        f"{concurrent['requests_per_s']:.1f} req/s, p50 {concurrent['p50_ms']:.1f} ms, "
        f"p99 {concurrent['p99_ms']:.1f} ms, errors {concurrent['errors']} {concurrent['first_errors']}"
    )
    print(f"throughput vs sequential: {ratio:.2f}x")
    print(
        f"faults ({faults['rounds']} rounds): {faults['statuses']}; good requests wrong: "
        f"{faults['good_request_errors']}; /health after: {faults['health_after']}"
    )
    print(
        f"server RSS: {rss_before / 1024:.0f} MiB before load, {rss_load / 1024:.0f} after load, "
        f"{rss_after / 1024:.0f} after faults; exit code on SIGTERM: {code}"
    )
    for line in results["batch_metrics"]:
        print("  ", line)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
