"""Training: labels only at step tags, truncation handling, soft labels, every head, parity,
checkpoints that round-trip through safetensors without pickle."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch

from prmkit.errors import ConfigError, DataFormatError, ModelLoadError
from prmkit.prm import PRMSpec, encode
from prmkit.prm.checkpoint import load_prm, save_prm
from prmkit.prm.heads import PRM
from prmkit.records import LabeledTrace, write_records
from prmkit.score import PRMScorer
from prmkit.testing import labeled_trace
from prmkit.train import IGNORE_INDEX, build_examples, dense_labels, split_eval
from prmkit.train.loop import build_prm, fit

PROMPT = "Tom has 3 apples and buys 4. How many?"


pytestmark = pytest.mark.usefixtures("one_thread")


def lt(i: int, labels, steps=None, prompt=PROMPT) -> LabeledTrace:
    return labeled_trace(i, labels, steps, prompt)


@pytest.fixture(scope="module")
def tok(smol_tokenizer):
    return copy.deepcopy(smol_tokenizer)


# ---------------------------------------------------------------- collation


def test_labels_only_at_tag_positions(tok):
    spec = PRMSpec.from_format("trl", head="tokcls")
    trace = lt(0, [1.0, 0.7, None, 0.0])
    (ex,), stats = build_examples(spec, tok, [trace])
    dense = dense_labels(ex)
    enc = encode(spec, tok, trace.prompt, trace.steps)
    tag_id = tok("\n", add_special_tokens=False)["input_ids"][-1]
    labelled = [i for i, v in enumerate(dense) if v != IGNORE_INDEX]
    assert labelled == [enc.step_positions[k] for k in (0, 1, 3)]
    assert all(ex.enc.input_ids[p] == tag_id for p in labelled)
    assert [dense[p] for p in labelled] == [1.0, 0.7, 0.0]  # soft label kept as a float
    assert stats.steps_labeled == 3 and stats.steps_unlabeled == 1
    (last,), _ = build_examples(spec, tok, [trace], last_step_only=True)
    assert last.label_positions() == [enc.step_positions[-1]] and last.targets == [0.0]


def test_until_first_error_drops_and_counts_later_labels(tok):
    spec = PRMSpec.from_format("trl", head="tokcls")
    traces = [lt(0, [1.0, 0.0, 1.0, 0.0]), lt(1, [1.0, 1.0])]
    examples, stats = build_examples(spec, tok, traces, until_first_error=True)
    assert [e.label_steps for e in examples] == [[0, 1], [0, 1]]
    assert examples[0].targets == [1.0, 0.0]
    assert stats.steps_after_first_error == 2 and stats.steps_labeled == 4
    everything, _ = build_examples(spec, tok, traces)
    assert everything[0].label_steps == [0, 1, 2, 3]


def test_error_weight_scales_the_wrong_steps_loss():
    from prmkit.train.loop import weighted_bce

    logits = torch.tensor([0.3, -0.2, 1.0])
    targets = torch.tensor([1.0, 0.0, 0.2])  # the soft 0.2 counts as a wrong step
    plain = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    assert weighted_bce(logits, targets) == pytest.approx(float(plain.mean()))
    weighted = weighted_bce(logits, targets, 3.0)
    assert weighted == pytest.approx(float((plain * torch.tensor([1.0, 3.0, 3.0])).mean()))


def test_truncation_is_an_error_or_a_counted_drop(tok):
    spec = PRMSpec.from_format("trl", head="tokcls")
    traces = [lt(0, [1.0, 1.0, 0.0]), lt(1, [1.0], prompt="short")]
    full = encode(spec, tok, PROMPT, traces[0].steps)
    cut = spec.replace(max_length=full.step_positions[1] + 1)  # keeps 2 of 3 tags
    with pytest.raises(DataFormatError, match="cuts off 1 step tag"):
        build_examples(cut, tok, traces)
    examples, stats = build_examples(cut, tok, traces, on_truncation="drop")
    assert [e.trace_id for e in examples] == ["t0", "t1"]
    assert examples[0].targets == [1.0, 1.0]
    assert stats.steps_dropped_truncation == 1 and stats.traces_dropped == 0
    tiny = spec.replace(max_length=full.step_positions[0])  # no tag of t0 survives
    examples, stats = build_examples(tiny, tok, traces, on_truncation="drop")
    assert [e.trace_id for e in examples] == ["t1"]
    assert stats.traces_dropped == 1 and stats.dropped_ids == ["t0"]
    with pytest.raises(ConfigError):
        build_examples(spec, tok, traces, on_truncation="ignore")


def test_split_eval_is_seeded_and_disjoint(tok):
    spec = PRMSpec.from_format("trl", head="tokcls")
    examples, _ = build_examples(spec, tok, [lt(i, [1.0]) for i in range(10)])
    a, b = split_eval(examples, 0.2, seed=1)
    assert len(b) == 2 and {e.trace_id for e in a}.isdisjoint({e.trace_id for e in b})
    assert [e.trace_id for e in split_eval(examples, 0.2, seed=1)[1]] == [e.trace_id for e in b]


# ---------------------------------------------------------------- parity


@pytest.mark.parametrize(
    ("fmt", "head", "tag_text"),
    [
        ("trl", "tokcls", "\n"),
        ("trl", "probe", "\n"),
        ("qwen_prm", "tokcls", "<extra_0>"),
        ("math_shepherd", "labeltok", "ки"),
        ("math_shepherd", "implicit", "ки"),
    ],
)
def test_train_inference_parity(smol_tokenizer, fmt, head, tag_text):
    """Token positions that receive labels in training are exactly those read at inference."""
    tok = copy.deepcopy(smol_tokenizer)
    tok.add_special_tokens({"additional_special_tokens": ["<extra_0>", "ки"]})
    spec = PRMSpec.from_format(fmt, head=head)
    traces = [lt(0, [1.0, 0.0, 1.0]), lt(1, [0.5, 1.0], prompt="Another problem here?")]
    examples, _ = build_examples(spec, tok, traces)
    scorer = PRMScorer(PRM(spec=spec, tokenizer=tok, model=None))
    tag_id = tok(tag_text, add_special_tokens=False)["input_ids"][-1]
    for ex, trace in zip(examples, traces, strict=True):
        read = scorer.encode(trace)
        assert ex.enc.input_ids == read.input_ids
        train_pos = [i for i, v in enumerate(dense_labels(ex)) if v != IGNORE_INDEX]
        assert train_pos == read.step_positions
        assert [read.input_ids[p] for p in read.step_positions] == [tag_id] * len(trace.steps)


# ---------------------------------------------------------------- training


def _scores(prm, traces):
    return PRMScorer(prm).score(traces)


def _bce(scores, traces) -> float:
    pairs = [
        (p, y)
        for s, t in zip(scores, traces, strict=True)
        for p, y in zip(s, t.labels, strict=True)
    ]
    return -sum(y * math.log(p) + (1 - y) * math.log(1 - p) for p, y in pairs) / len(pairs)


@pytest.mark.slow
def test_soft_labels_train_toward_their_value(tiny_model_dir):
    """A 0.7 label trains toward 0.7 (not 1.0); a 0.2 label toward 0.2."""
    spec = PRMSpec.from_format("trl", head="tokcls")
    prm = build_prm(spec, str(tiny_model_dir), seed=0)
    trace = lt(0, [0.7, 0.2])
    examples, _ = build_examples(prm.spec, prm.tokenizer, [trace])
    fit(prm, examples, lr=2e-3, epochs=40, batch_size=1)
    got = _scores(prm, [trace])[0]
    assert got == pytest.approx([0.7, 0.2], abs=0.03)


def test_early_stopping_keeps_the_best_weights(tiny_model_dir):
    """Train on label 1, evaluate on the same steps labelled 0: eval loss only rises."""
    spec = PRMSpec.from_format("trl", head="tokcls")
    prm = build_prm(spec, str(tiny_model_dir), seed=0)
    train, _ = build_examples(prm.spec, prm.tokenizer, [lt(0, [1.0, 1.0])])
    held, _ = build_examples(prm.spec, prm.tokenizer, [lt(0, [0.0, 0.0])])
    result = fit(prm, train, held, lr=1e-2, epochs=50, eval_every=1, patience=2)
    assert result.stopped_early and result.optimizer_steps == 3
    losses = [h["eval_loss"] for h in result.history]
    assert losses[0] < losses[1] < losses[2]
    from prmkit.train.trainer import eval_loss

    assert eval_loss(prm, held, 4) == pytest.approx(losses[0], rel=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fmt", "head", "lora"),
    [
        ("trl", "tokcls", 0),
        ("trl", "tokcls", 4),
        ("math_shepherd", "labeltok", 0),
        ("trl", "probe", 0),
        ("trl", "implicit", 4),
    ],
)
def test_heads_learn_and_checkpoints_round_trip(tiny_model_dir, tmp_path, fmt, head, lora):
    spec = PRMSpec.from_format(fmt, head=head, probe_hidden=16, beta=1.0)
    prm = build_prm(spec, str(tiny_model_dir), lora_r=lora, seed=0)
    traces = [lt(i, [1.0, 1.0] if i % 2 else [1.0, 0.0]) for i in range(4)]
    examples, _ = build_examples(prm.spec, prm.tokenizer, traces)
    before = _scores(prm, traces)
    result = fit(prm, examples, lr=1e-2 if head == "probe" else 3e-3, epochs=8, batch_size=2)
    after = _scores(prm, traces)
    assert result.optimizer_steps > 0
    if head == "implicit":  # the outcome logit (sum of step rewards) moves toward the outcome
        gap_before = sum(before[1]) - sum(before[0])
        assert sum(after[1]) - sum(after[0]) > gap_before + 0.5
    else:  # the step-label loss goes down
        assert _bce(after, traces) < _bce(before, traces) - 0.05
    out = save_prm(prm, tmp_path / "ckpt")
    assert json.loads((out / "prm_spec.json").read_text())["head"] == head
    assert not list(out.rglob("*.bin")) and list(out.glob("*.safetensors"))
    loaded = load_prm(out)
    assert not hasattr(loaded.model, "peft_config")
    again = _scores(loaded, traces)
    for a, b in zip(after, again, strict=True):
        assert a == pytest.approx(b, abs=1e-4)


def test_loading_refuses_pickles_and_unrequested_remote_code(tiny_model_dir, tmp_path):
    spec = PRMSpec.from_format("trl", head="labeltok", label_tokens=["+", "-"])
    prm = build_prm(spec, str(tiny_model_dir))
    ckpt = save_prm(prm, tmp_path / "c")
    for f in ckpt.glob("*.safetensors"):
        torch.save({}, f.with_suffix(".bin"))
        f.unlink()
    with pytest.raises(ModelLoadError, match="no safetensors"):
        load_prm(ckpt)
    remote = save_prm(prm, tmp_path / "r")
    config = json.loads((remote / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_x.Model"}
    (remote / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="trust_remote_code"):
        load_prm(remote)


def test_train_and_score_cli(tiny_model_dir, tmp_path):
    from prmkit.cli import main
    from prmkit.records import ScoredTrace, read_records

    data = tmp_path / "labeled.jsonl"
    write_records(data, [lt(i, [1.0, float(i % 2)]) for i in range(6)])
    ckpt = tmp_path / "prm"
    rc = main(
        [
            "train",
            "--data",
            str(data),
            "--base",
            str(tiny_model_dir),
            "--head",
            "probe",
            "--out",
            str(ckpt),
            "epochs=3",
            "probe_hidden=8",
            "eval_fraction=0.34",
            "until_first_error=true",
            "error_weight=2",
        ]
    )
    assert rc == 0
    report = json.loads((ckpt / "train_report.json").read_text())
    assert report["train_traces"] == 4 and report["eval_traces"] == 2
    assert report["config"]["error_weight"] == 2.0 and report["config"]["until_first_error"]
    assert report["data"]["steps_after_first_error"] == 0
    out = tmp_path / "scored.jsonl"
    assert main(["score", "--prm", str(ckpt), "--traces", str(data), "--out", str(out)]) == 0
    scored = read_records(out, ScoredTrace)
    assert len(scored) == 6 and all(len(s.step_scores) == 2 for s in scored)
    agg = scored[0].meta["prm_aggregates"]
    assert agg["min"] == min(scored[0].step_scores) and agg["last"] == scored[0].step_scores[-1]
    assert scored[0].labels == [1.0, 0.0]
    assert main(["train", "--data", str(data), "--out", str(ckpt), "nonsense=1"]) == 1
    assert main(["train", "--data", str(data), "--out", str(ckpt), "error_weight=0"]) == 1


def test_probe_keeps_only_the_blocks_its_layer_needs(tmp_path, smol_tokenizer):
    """A middle-layer probe runs blocks 0..layer only, reads the same features as the full
    model, and its checkpoint holds (and reloads) only those blocks; -1 keeps everything."""
    from prmkit.prm.heads import hidden_features, truncate_for_probe
    from prmkit.testing import build_tiny_lm

    base = tmp_path / "tiny4"
    build_tiny_lm(len(smol_tokenizer), layers=4).save_pretrained(base)
    smol_tokenizer.save_pretrained(base)
    full = build_prm(PRMSpec.from_format("trl", head="probe"), str(base))
    assert full.model.config.num_hidden_layers == 4 and full.spec.probe_layer == -1
    traces = [lt(0, [1.0, 0.0]), lt(1, [1.0, 1.0, 1.0])]
    encs = [encode(full.spec, full.tokenizer, t.prompt, t.steps) for t in traces]
    from prmkit.prm.heads import pad_batch

    ids, mask = pad_batch(encs, full.pad_id())
    with torch.no_grad():
        want = hidden_features(full.model, ids, mask, encs, 2)
    for layer in (2, -3):  # hidden_states[2] of a 4-block model, two ways
        prm = build_prm(PRMSpec.from_format("trl", head="probe", probe_layer=layer), str(base))
        assert prm.model.config.num_hidden_layers == 3 and prm.spec.probe_layer == 2
        with torch.no_grad():
            got = hidden_features(prm.model, ids, mask, encs, prm.spec.probe_layer)
        assert all(torch.equal(a, b) for a, b in zip(want, got, strict=True))
    save_prm(prm, tmp_path / "ckpt")
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["num_hidden_layers"] == 3
    loaded = load_prm(tmp_path / "ckpt")
    assert loaded.spec.probe_layer == 2 and loaded.model.config.num_hidden_layers == 3
    assert PRMScorer(loaded).score(traces) == PRMScorer(prm).score(traces)
    with pytest.raises(ConfigError, match="probe_layer out of range"):
        truncate_for_probe(full.model, 9)
