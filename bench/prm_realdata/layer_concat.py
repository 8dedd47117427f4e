"""Follow-up probe variants on the cached real-data features: concatenated layers, and a held-out
split without the simplicity classes for selection.

Needs the feature cache of ``bench/prm_realdata/run.py`` (``runs/prm_realdata``, layers
4/8/12/16). Each variant is a ProbeHead on standardized features (one layer, or several
concatenated), trained with run.py's ``train_probe`` on labels up to and including the first
error. Its threshold is chosen on the held-out PRMBench split: all of it (``held``), or without
the redundancy and circular-reasoning traces (``held_ns``). One JSON line per variant gives the
held-out F1 and the ProcessBench F1 at each of those thresholds, plus the diagnostic oracle F1
(threshold chosen on ProcessBench itself; never used for selection).

    PRMKIT_CACHE_DIR=$PWD/.cache .venv/bin/python bench/prm_realdata/layer_concat.py \\
        > bench/prm_realdata/results/layer_concat.jsonl
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
GROUPS = {"8": [1], "16": [3], "8+12+16": [1, 2, 3], "all4": [0, 1, 2, 3]}  # indices into 4/8/12/16


def main() -> int:
    import torch

    sys.path.insert(0, str(HERE))
    from run import SIMPLICITY, RealDataConfig, _cached_sets, _targets, train_probe

    from prmkit.config import load_config
    from prmkit.evaluate.processbench import (
        choose_threshold,
        first_error_prediction,
        subset_metrics,
    )

    torch.set_num_threads(2)
    cfg = load_config(RealDataConfig, ROOT / "recipes/prm_processbench.yaml")
    cfg.work_dir = str(ROOT / "runs/prm_realdata")
    sets, feats = _cached_sets(cfg)
    order = list(range(len(sets["train"])))
    random.Random(cfg.seed).shuffle(order)
    stop_ids = {sets["train"][i].id for i in order[: max(1, round(0.1 * len(order)))]}
    train_tr = [t for t in sets["train"] if t.id not in stop_ids]
    stop_tr = [t for t in sets["train"] if t.id in stop_ids]

    def feat(name, trace, idx):
        f = feats[name][trace.id].float()  # (steps, layers, hidden)
        return torch.cat([f[:, i] for i in idx], dim=1)

    def matrix(traces, classes, idx):
        xs, ys = [], []
        for t in traces:
            if classes == "no_simplicity" and t.meta.get("classification") in SIMPLICITY:
                continue
            pairs = _targets(t, "first")
            if pairs:
                xs.append(feat("train", t, idx)[[i for i, _ in pairs]])
                ys.extend(y for _, y in pairs)
        return torch.cat(xs), torch.tensor(ys)

    def scores(probe, name, traces, idx, mu, sd):
        with torch.no_grad():
            return [torch.sigmoid(probe((feat(name, t, idx) - mu) / sd)).tolist() for t in traces]

    held_splits = {
        "held": sets["heldout"],
        "held_ns": [t for t in sets["heldout"] if t.meta.get("classification") not in SIMPLICITY],
    }
    pb = sets["processbench"]
    pb_labels = [t.first_error for t in pb]
    for group, idx in GROUPS.items():
        for classes in ("all", "no_simplicity"):
            x, y = matrix(train_tr, classes, idx)
            xe, ye = matrix(stop_tr, classes, idx)
            mu, sd = x.mean(0), x.std(0) + 1e-4
            for width in (0, 256):
                for balance in (False, True):
                    start = time.perf_counter()
                    probe, _ = train_probe(
                        (x - mu) / sd, y, (xe - mu) / sd, ye, width=width, balance=balance, cfg=cfg
                    )
                    row = {"layers": group, "classes": classes, "width": width, "balance": balance}
                    ps = scores(probe, "processbench", pb, idx, mu, sd)
                    for name, held in held_splits.items():
                        hs = scores(probe, "heldout", held, idx, mu, sd)
                        thr, f1 = choose_threshold(
                            list(zip([t.first_error for t in held], hs, strict=True))
                        )
                        m = subset_metrics(pb_labels, [first_error_prediction(s, thr) for s in ps])
                        row[name] = round(f1, 1)
                        row[f"{name}_pb"] = round(m.f1, 1)
                    row["oracle"] = round(
                        choose_threshold(list(zip(pb_labels, ps, strict=True)))[1], 1
                    )
                    row["s"] = round(time.perf_counter() - start)
                    print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
