"""File hygiene and typed errors of the shared IO: NaN/Infinity refused on read, corrupt Parquet,
folders given as files, file modes that follow the umask, stale temp files of killed writes, and
the CLI's last safety net for OSError."""

from __future__ import annotations

import os
import stat
import time

import pytest

from prmkit.errors import ConfigError, DataFormatError
from prmkit.io import atomic_write, iter_jsonl, read_json, write_json, write_jsonl
from prmkit.records import Problem, read_records, write_records

DEAD_PID = 2**22 + 12345  # above the default pid_max of 4194304: never a live process


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_jsonl_refuses_nan_and_infinity_with_file_line_and_field(tmp_path, constant):
    path = tmp_path / "p.jsonl"
    good = '{"kind": "problem", "id": "a", "prompt": "x", "answer": "1"}'
    bad = f'{{"kind": "problem", "id": "b", "prompt": "x", "answer": "1", "meta": {{"t": {constant}}}}}'
    path.write_text(good + "\n" + bad + "\n")
    with pytest.raises(DataFormatError) as err:
        read_records(path, Problem)
    assert f"{path}:2" in str(err.value) and constant in str(err.value)
    assert "'meta.t'" in str(err.value)


def test_json_document_refuses_nan_with_its_location(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{\n  "a": [1,\n NaN]\n}\n')
    with pytest.raises(DataFormatError) as err:
        read_json(path)
    assert str(path) in str(err.value) and "field 'a[1]'" in str(err.value)


def test_malformed_json_message_says_at_once(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "abc\n')
    with pytest.raises(DataFormatError) as err:
        list(iter_jsonl(path))
    assert "at at" not in str(err.value) and "at column" in str(err.value)


def test_parquet_float_nan_in_meta_is_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "p.parquet"
    rows = [{"kind": "problem", "id": "a", "prompt": "x", "answer": "1", "meta": '{"t": NaN}'}]
    pq.write_table(pa.Table.from_pylist(rows), path)
    with pytest.raises(DataFormatError) as err:
        read_records(path, Problem)
    assert f"{path} row 1 field 'meta.t'" in str(err.value) and "NaN" in str(err.value)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_parquet_is_a_data_format_error_naming_the_file(tmp_path, damage):
    path = tmp_path / "p.parquet"
    write_records(path, [Problem(id=f"p{i}", prompt="x", answer="1") for i in range(50)])
    data = path.read_bytes()
    path.write_bytes(b"not parquet at all" if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(DataFormatError) as err:
        read_records(path, Problem)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("name", ["in.jsonl", "in.parquet"])
def test_folder_as_input_is_a_typed_error(tmp_path, name):
    folder = tmp_path / name
    folder.mkdir()
    with pytest.raises(DataFormatError, match="is a folder"):
        read_records(folder, Problem)
    with pytest.raises(DataFormatError, match="is a folder"):
        list(iter_jsonl(folder))
    with pytest.raises(DataFormatError, match="is a folder"):
        read_json(folder)


def test_folder_as_output_is_a_typed_error(tmp_path):
    folder = tmp_path / "out.jsonl"
    folder.mkdir()
    with pytest.raises(ConfigError, match="is a folder"):
        write_jsonl(folder, [{"a": 1}])
    assert folder.is_dir() and not list(tmp_path.glob(".out.jsonl.*"))


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_written_files_follow_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        write_json(tmp_path / "a.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o666 & ~mask


def _leftover(tmp_path, name, pid, age_s):
    path = tmp_path / f".{name}.{pid}-{age_s:08x}.tmp"
    path.write_text("half")
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_next_write_removes_stale_temp_files_of_the_same_target_only(tmp_path):
    stale = _leftover(tmp_path, "out.jsonl", DEAD_PID, 3600)
    young = _leftover(tmp_path, "out.jsonl", DEAD_PID, 60)  # maybe a writer on another host
    live = _leftover(tmp_path, "out.jsonl", os.getpid(), 3600)  # a writer still running
    other = _leftover(tmp_path, "other.jsonl", DEAD_PID, 3600)
    user = tmp_path / ".out.jsonl.mine.tmp"
    user.write_text("keep")
    write_jsonl(tmp_path / "out.jsonl", [{"a": 1}])
    assert not stale.exists()
    assert young.exists() and live.exists() and other.exists() and user.exists()


def test_a_failed_write_leaves_no_temp_file_and_the_old_target(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write("new")
        raise RuntimeError("boom")
    assert target.read_text() == "old\n" and sorted(os.listdir(tmp_path)) == ["out.jsonl"]


def test_cli_prints_an_os_error_without_a_stack(monkeypatch, capsys):
    import prmkit.tasks.cli as stage
    from prmkit.cli import main

    def boom(args):
        raise PermissionError(13, "Permission denied", "/data/out.jsonl")

    monkeypatch.setattr(stage, "run", boom)
    assert main(["problems", "task=arithmetic", "n=1", "out=x.jsonl"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("prmkit problems: error: ")
    assert "Permission denied" in err and "/data/out.jsonl" in err and "Traceback" not in err


def test_cli_does_not_swallow_other_exceptions(monkeypatch):
    import prmkit.tasks.cli as stage
    from prmkit.cli import main

    def boom(args):
        raise KeyError("a bug")

    monkeypatch.setattr(stage, "run", boom)
    with pytest.raises(KeyError):
        main(["problems", "task=arithmetic", "n=1", "out=x.jsonl"])
