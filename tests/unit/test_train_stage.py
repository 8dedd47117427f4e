"""The train stage as a library (records in memory, the spec's defaults) and the one engine
(cached step features, the probe trainer, one early-stopping rule for every head)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from prmkit.cli import main
from prmkit.errors import ConfigError
from prmkit.prm import FORMATS, PRMSpec, encode
from prmkit.prm.heads import ProbeHead, hidden_features, pad_batch
from prmkit.records import write_records
from prmkit.testing import labeled_trace
from prmkit.train import (
    TrainConfig,
    build_examples,
    build_prm,
    fit,
    fit_probe,
    probe_features,
    step_features,
    train,
)
from prmkit.train.run import SPEC_KEYS

pytestmark = pytest.mark.usefixtures("one_thread")


lt = labeled_trace


# ---------------------------------------------------------------- the config


def test_spec_keys_default_to_the_spec_and_are_defined_once():
    spec_defaults = {f.name: f.default for f in dataclasses.fields(PRMSpec)}
    cfg = TrainConfig()
    assert {k: getattr(cfg, k) for k in SPEC_KEYS} == {k: spec_defaults[k] for k in SPEC_KEYS}
    assert cfg.max_length == 2048  # was 1024 before the spec became the one source
    # a format never sets a key the config always passes (it would be overridden silently)
    assert all(not set(SPEC_KEYS) & set(fmt) for fmt in FORMATS.values())
    assert cfg.spec() == PRMSpec.from_format("trl", head="tokcls")


def test_config_builds_the_spec_it_trains():
    cfg = TrainConfig(
        head="labeltok", format="math_shepherd", step_tag=" <s>", max_length=512, aggregation="last"
    )
    spec = cfg.spec()
    assert (spec.head, spec.step_tag, spec.step_join) == ("labeltok", " <s>", "\n")
    assert (spec.max_length, spec.aggregation, spec.label_tokens) == (512, "last", ["+", "-"])
    assert TrainConfig(format="qwen_prm").spec().step_tag == "<extra_0>"  # null: the format's
    with pytest.raises(ConfigError, match="unknown choice for 'head'"):
        TrainConfig(head="mlp")


def test_cli_flags_are_shortcuts_of_keys(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    write_records(data, [lt(0, [1.0])])
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "o"), "--head", "mlp"]) == 1
    assert "unknown choice for 'head'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- the stage in Python


def test_train_takes_records_in_memory(tiny_model_dir, tmp_path):
    records = [lt(i, [1.0, float(i % 2)]) for i in range(6)]
    cfg = TrainConfig(
        out=str(tmp_path / "prm"),
        base=str(tiny_model_dir),
        head="probe",
        probe_hidden=8,
        epochs=2,
        lr=1e-3,
    )
    lines: list[str] = []
    report = train(cfg, records=records[:4], eval_records=records[4:], log=lines.append)
    assert report["records"] == {"data": "memory", "eval_data": "memory"}
    assert (report["train_traces"], report["eval_traces"]) == (4, 2)
    assert report["data"]["steps_labeled"] == 8 and report["eval_data"]["steps_labeled"] == 4
    on_disk = json.loads((tmp_path / "prm" / "train_report.json").read_text())
    assert on_disk["fit"] == report["fit"] and report["fit"]["epochs_run"] == 2
    spec = json.loads((tmp_path / "prm" / "prm_spec.json").read_text())
    assert (spec["max_length"], spec["probe_hidden"]) == (2048, 8)
    assert lines[0].startswith("train 4 traces, eval 2") and lines[-1].startswith("saved ")


@pytest.mark.parametrize(
    ("kwargs", "records", "message"),
    [
        ({"data": "x.jsonl"}, [lt(0, [1.0])], "records given twice for 'data'"),
        ({}, [], "no labelled traces"),
        ({}, None, "missing 'data'"),
        ({"out": ""}, [lt(0, [1.0])], "missing 'out'"),
    ],
)
def test_train_refuses_bad_inputs_before_loading(tmp_path, monkeypatch, kwargs, records, message):
    import prmkit.train.loop

    def no_training(*args, **kw):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(prmkit.train.loop, "build_prm", no_training)
    cfg = TrainConfig(**{"out": str(tmp_path / "o"), **kwargs})
    with pytest.raises(ConfigError, match=message):
        train(cfg, records=records)


def test_eval_records_twice_are_refused(tmp_path):
    cfg = TrainConfig(out=str(tmp_path / "o"), eval_data="e.jsonl")
    with pytest.raises(ConfigError, match="records given twice for 'eval_data'"):
        train(cfg, records=[lt(0, [1.0])], eval_records=[lt(1, [1.0])])


# ---------------------------------------------------------------- the engine


def test_step_features_read_what_scoring_reads(tmp_path, smol_tokenizer):
    """Several layers in one pass; each equals hidden_features (the scorer's read) there."""
    from prmkit.testing import build_tiny_lm

    base = tmp_path / "tiny3"
    build_tiny_lm(len(smol_tokenizer), layers=3, hidden=16).save_pretrained(base)
    smol_tokenizer.save_pretrained(base)
    prm = build_prm(PRMSpec.from_format("trl", head="probe"), str(base))
    traces = [lt(0, [1.0, 0.0]), lt(1, [1.0, 1.0, 1.0], prompt="Another, longer problem here?")]
    encs = [encode(prm.spec, prm.tokenizer, t.prompt, t.steps) for t in traces]
    feats = step_features(prm.model, encs, [1, -1], pad_id=prm.pad_id(), batch_size=2)
    assert [tuple(f.shape) for f in feats] == [(2, 2, 16), (3, 2, 16)]
    ids, mask = pad_batch(encs, prm.pad_id())
    with torch.no_grad():
        for i, layer in enumerate([1, -1]):
            want = hidden_features(prm.model, ids, mask, encs, layer)
            assert all(torch.equal(w, f[:, i]) for w, f in zip(want, feats, strict=True))
    examples, _ = build_examples(prm.spec, prm.tokenizer, traces, until_first_error=True)
    x, y = probe_features(prm, examples, batch_size=1)
    assert torch.allclose(x, torch.cat([feats[0][:2, 1], feats[1][:, 1]]), atol=1e-6)
    assert y.tolist() == [1.0, 0.0, 1.0, 1.0, 1.0]


def test_probe_early_stopping_keeps_the_best_weights():
    """The rule of every head: train on label 1, evaluate on the same rows labelled 0."""
    torch.manual_seed(0)
    x = torch.randn(32, 8)
    probe = ProbeHead(8, 0)
    result = fit_probe(
        probe, x, torch.ones(32), x, torch.zeros(32), lr=1e-1, epochs=50, batch_size=8, patience=2
    )
    losses = [h["eval_loss"] for h in result.history]
    assert result.stopped_early and result.epochs_run == 3 and result.optimizer_steps == 12
    assert losses[0] < losses[1] < losses[2] and result.best_eval_loss == losses[0]
    with torch.no_grad():
        again = torch.nn.functional.binary_cross_entropy_with_logits(probe(x), torch.zeros(32))
    assert float(again) == pytest.approx(losses[0], rel=1e-6)
    with pytest.raises(ConfigError, match="no training features"):
        fit_probe(probe, torch.empty(0, 8), torch.empty(0))


def test_probe_honours_max_steps_and_eval_every(tiny_model_dir):
    """One loop for every head: the probe stops at max_steps and evaluates every N steps."""
    prm = build_prm(PRMSpec.from_format("trl", head="probe", probe_hidden=4), str(tiny_model_dir))
    examples, _ = build_examples(prm.spec, prm.tokenizer, [lt(i, [1.0, 0.0]) for i in range(8)])
    result = fit(prm, examples[:6], examples[6:], batch_size=1, epochs=20, max_steps=5)
    assert result.optimizer_steps == 5 and result.epochs_run == 5  # 12 rows: one step an epoch
    result = fit(prm, examples[:6], examples[6:], epochs=3, eval_every=1, patience=0)
    assert [h["step"] for h in result.history] == [1, 2, 3]
    assert all("eval_loss" in h for h in result.history)
