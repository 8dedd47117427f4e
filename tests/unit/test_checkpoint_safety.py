"""Checkpoint writes never remove what prmkit did not create, replace a checkpoint only when asked,
leave a loadable checkpoint whenever they are killed, and create folders that follow the umask."""

from __future__ import annotations

import os
import shutil
import stat
import time
from pathlib import Path

import pytest

import prmkit.io
from prmkit.errors import ConfigError
from prmkit.prm import PRMSpec
from prmkit.prm.checkpoint import check_checkpoint_target, load_prm, save_prm
from prmkit.records import LabeledTrace, write_records
from prmkit.train.loop import build_prm

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def prm(tiny_model_dir):
    spec = PRMSpec.from_format("trl", head="labeltok", label_tokens=["+", "-"])
    return build_prm(spec, str(tiny_model_dir))


def _siblings(target: Path) -> list[str]:
    return sorted(p.name for p in target.parent.iterdir() if p.name.startswith(f".{target.name}."))


def _user_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "precious"
    folder.mkdir()
    (folder / "notes.txt").write_text("x")
    return folder


@pytest.mark.parametrize("overwrite", [False, True])
def test_save_refuses_a_folder_that_is_not_a_checkpoint(prm, tmp_path, overwrite):
    folder = _user_folder(tmp_path)
    with pytest.raises(ConfigError, match="not a prmkit checkpoint"):
        save_prm(prm, folder, overwrite=overwrite)
    assert (folder / "notes.txt").read_text() == "x" and os.listdir(folder) == ["notes.txt"]
    assert _siblings(folder) == []


def test_save_refuses_the_working_folder(prm, tmp_path, monkeypatch):
    (tmp_path / "mine.txt").write_text("x")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="not a prmkit checkpoint"):
        save_prm(prm, ".", overwrite=True)
    assert os.listdir(tmp_path) == ["mine.txt"]


def test_save_refuses_a_file(prm, tmp_path):
    path = tmp_path / "ckpt"
    path.write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        check_checkpoint_target(path, overwrite=True)
    assert path.read_text() == "x"


def test_an_existing_checkpoint_is_replaced_only_with_overwrite(prm, tmp_path):
    target = save_prm(prm, tmp_path / "ckpt")
    (target / "empty").mkdir()
    save_prm(prm, tmp_path / "empty_dir_ok")  # a new folder
    with pytest.raises(ConfigError, match="overwrite=true"):
        save_prm(prm, target)
    assert (target / "empty").is_dir()
    new = prm.spec.replace(aggregation="prod")
    save_prm(prm_with(prm, new), target, overwrite=True)
    assert not (target / "empty").exists() and load_prm(target).spec.aggregation == "prod"
    assert _siblings(target) == []


def prm_with(prm, spec):
    import dataclasses

    return dataclasses.replace(prm, spec=spec)


@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_checkpoint_folders_and_files_follow_the_umask(prm, tmp_path, mask):
    old = os.umask(mask)
    try:
        target = save_prm(prm, tmp_path / "ckpt")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~mask
    assert stat.S_IMODE((target / "prm_spec.json").stat().st_mode) == 0o666 & ~mask


def _train_cli(data, base, out, *extra):
    from prmkit.cli import main

    return main(
        [
            *("train", "--data", str(data), "--base", str(base), "--head", "probe"),
            *("--out", str(out), "epochs=1", "probe_hidden=4", "eval_fraction=0", "patience=0"),
            *extra,
        ]
    )


def test_train_refuses_the_output_folder_before_training(tiny_model_dir, tmp_path, monkeypatch):
    import prmkit.train.loop

    data = tmp_path / "labeled.jsonl"
    trace = LabeledTrace(
        id="t", problem_id="p", prompt="1+1?", steps=["1+1=2."], labels=[1.0], label_source="x"
    )
    write_records(data, [trace])
    folder = _user_folder(tmp_path)

    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    with monkeypatch.context() as m:
        m.setattr(prmkit.train.loop, "build_prm", no_training)
        assert _train_cli(data, tiny_model_dir, folder) == 1
        assert _train_cli(data, tiny_model_dir, folder, "overwrite=true") == 1
    assert os.listdir(folder) == ["notes.txt"]
    ckpt = tmp_path / "prm"
    assert _train_cli(data, tiny_model_dir, ckpt) == 0
    with monkeypatch.context() as m:
        m.setattr(prmkit.train.loop, "build_prm", no_training)
        assert _train_cli(data, tiny_model_dir, ckpt) == 1  # a checkpoint, but no overwrite
    assert _train_cli(data, tiny_model_dir, ckpt, "overwrite=true") == 0
    assert (ckpt / "train_report.json").exists() and load_prm(ckpt).spec.head == "probe"


class Killed(BaseException):
    """A kill: the process stops here; nothing after it runs."""


def _kill_points(prm, tmp_path, monkeypatch):
    """Replace ``old`` by ``new`` once per step of the save; snapshot the folder at each step."""
    parent = tmp_path / "runs"
    target = parent / "ckpt"
    new = prm_with(prm, prm.spec.replace(aggregation="prod"))
    snaps = []
    real_replace, real_rmtree = os.replace, shutil.rmtree
    for k in range(10):
        real_rmtree(parent, ignore_errors=True)
        save_prm(prm, target)
        state = {"ops": 0, "dead": False}

        def step(real, *args, k=k, state=state, **kwargs):
            if state["dead"]:
                raise Killed
            if Path(args[0]).parent == parent:
                if state["ops"] == k:
                    snap = tmp_path / f"snap{k}"
                    shutil.copytree(parent, snap, symlinks=True)
                    snaps.append(snap)
                    state["dead"] = True
                    raise Killed
                state["ops"] += 1
            return real(*args, **kwargs)

        with monkeypatch.context() as m:
            m.setattr(os, "replace", lambda *a, **kw: step(real_replace, *a, **kw))
            m.setattr(shutil, "rmtree", lambda *a, **kw: step(real_rmtree, *a, **kw))
            try:
                save_prm(new, target, overwrite=True)
            except Killed:
                continue
        assert load_prm(target).spec.aggregation == "prod"
        return snaps, new
    raise AssertionError("save_prm never finished")


def test_a_killed_replacement_leaves_a_loadable_checkpoint(prm, tmp_path, monkeypatch):
    snaps, new = _kill_points(prm, tmp_path, monkeypatch)
    monkeypatch.setattr(prmkit.io, "_pid_alive", lambda pid: False)  # the killed writer is gone
    for snap in snaps:
        target = snap / "ckpt"
        assert load_prm(target).spec.aggregation in ("min", "prod")
        then = time.time() - 3600
        for name in _siblings(target):
            os.utime(snap / name, (then, then))
        save_prm(new, target, overwrite=True)
        assert _siblings(target) == [] and load_prm(target).spec.aggregation == "prod"
    assert len(snaps) == 3  # before: old aside, new in, old removed


def test_a_kill_while_writing_leaves_the_old_checkpoint(prm, tmp_path, monkeypatch):
    import prmkit.prm.checkpoint as checkpoint

    target = save_prm(prm, tmp_path / "ckpt")

    def killed(*args, **kwargs):
        raise Killed

    with monkeypatch.context() as m:
        m.setattr(checkpoint, "save_spec", killed)
        with pytest.raises(Killed):
            save_prm(prm_with(prm, prm.spec.replace(aggregation="prod")), target, overwrite=True)
    assert load_prm(target).spec.aggregation == "min" and _siblings(target) == []
