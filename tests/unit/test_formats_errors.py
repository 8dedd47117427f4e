"""Bad input to every format reader: the error type, and a message naming file, line or record,
field, what was got and what was expected."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from prmkit.cli import main
from prmkit.errors import DataFormatError, RecordError
from prmkit.formats import ConversionReport, read


def _row(**kw: object) -> bytes:
    return (json.dumps(kw, ensure_ascii=False) + "\n").encode("utf-8")


PB_OK = {
    "id": "m-0",
    "generator": "g",
    "problem": "1+1?",
    "steps": ["1+1=2", "So 2."],
    "final_answer_correct": True,
    "label": -1,
}
PB_ROW = {
    "original_question": "q",
    "modified_question": "q",
    "original_process": ["a", "b"],
    "modified_process": ["a", "b"],
    "modified_steps": [2],
    "error_steps": [2],
    "reason": "r",
    "idx": "prm_test_p1_0",
    "question": "q",
    "classification": "circular",
}


def _pb(**change: object) -> bytes:
    item = {**PB_OK, **change}
    return json.dumps([PB_OK | {"id": "m-first"}, item]).encode("utf-8")


def _prm800k(step: dict) -> bytes:
    return _row(question={"problem": "2+2?"}, label={"steps": [step], "finish_reason": "solution"})


CASES = [
    # ProcessBench
    (
        "processbench",
        "pb.json",
        b'[{"id": "m-0", "steps": [}]',
        DataFormatError,
        [r"pb\.json:1: malformed JSON"],
    ),
    (
        "processbench",
        "pb.json",
        b'[{"id": "caf\xe9"}]',
        DataFormatError,
        [r"pb\.json: bytes that are not UTF-8", "expected UTF-8 text"],
    ),
    (
        "processbench",
        "pb.json",
        b'{"id": "m-0"}',
        DataFormatError,
        ["is not a JSON list", "got 'dict'"],
    ),
    (
        "processbench",
        "pb.json",
        _pb(steps=None).replace(b'"steps": null, ', b""),
        RecordError,
        [r"record 1 \(id 'm-0'\): missing key 'steps'"],
    ),
    (
        "processbench",
        "pb.json",
        _pb(label="2"),
        RecordError,
        [r"record 1 \(id 'm-0'\) field 'label': wrong type", "got 'str'"],
    ),
    (
        "processbench",
        "pb.json",
        _pb(label=True),
        RecordError,
        [r"field 'label': wrong type", "got 'bool'"],
    ),
    (
        "processbench",
        "pb.json",
        _pb(label=2),
        RecordError,
        [r"record 1 \(id 'm-0'\) field 'label': error index out of range", "got 2", r"in \[0, 1\]"],
    ),
    ("processbench", "pb.json", _pb(label=-2), RecordError, ["error index out of range"]),
    (
        "processbench",
        "pb.json",
        _pb(steps=["ok", 3]),
        RecordError,
        [r"field 'steps\[1\]': wrong type", "got 'int'"],
    ),
    (
        "processbench",
        "pb.json",
        _pb(steps=["ok", "  "]),
        RecordError,
        [r"record 1 \(id 'm-0'\) field 'steps\[1\]': empty step"],
    ),
    (
        "processbench",
        "pb.json",
        _pb(id="m-first"),
        RecordError,
        [r"field 'id': duplicate id", "got 'm-first'"],
    ),
    (
        "processbench",
        "pb.json",
        _pb(final_answer_correct="yes"),
        RecordError,
        [r"field 'final_answer_correct': wrong type", "expected bool"],
    ),
    # PRMBench
    (
        "prmbench",
        "pb.jsonl",
        _row(**PB_ROW) + b"{not json\n",
        DataFormatError,
        [r"pb\.jsonl:2: malformed JSON"],
    ),
    (
        "prmbench",
        "pb.jsonl",
        _row(**PB_ROW) + b'{"idx": "\xff"}\n',
        DataFormatError,
        [r"pb\.jsonl:2: bytes that are not UTF-8"],
    ),
    (
        "prmbench",
        "pb.jsonl",
        _row(**{k: v for k, v in PB_ROW.items() if k != "classification"}),
        RecordError,
        [r"pb\.jsonl:1: missing key 'classification'"],
    ),
    (
        "prmbench",
        "pb.jsonl",
        _row(**PB_ROW | {"error_steps": ["2"]}),
        RecordError,
        [r"pb\.jsonl:1 field 'error_steps\[0\]': wrong type", "got '2'"],
    ),
    (
        "prmbench",
        "pb.jsonl",
        _row(**PB_ROW | {"modified_process": "a\nb"}),
        RecordError,
        [r"pb\.jsonl:1 field 'modified_process': wrong type", "expected a list of strings"],
    ),
    # PRM800K
    (
        "prm800k",
        "p.jsonl",
        _prm800k({"completions": [{"text": "4", "rating": 2}], "chosen_completion": 0}),
        RecordError,
        [
            r"p\.jsonl:1 label\.steps\[0\]\.completions\[0\] field 'rating': bad rating",
            "got 2",
            "-1, 0, 1 or null",
        ],
    ),
    (
        "prm800k",
        "p.jsonl",
        _prm800k({"completions": [{"text": "4", "rating": 1}], "chosen_completion": 1}),
        RecordError,
        [
            r"label\.steps\[0\] field 'chosen_completion': chosen_completion out of range",
            r"\[0, 0\]",
        ],
    ),
    (
        "prm800k",
        "p.jsonl",
        _row(label={"steps": []}),
        RecordError,
        [r"p\.jsonl:1: missing key 'question'"],
    ),
    (
        "prm800k",
        "p.jsonl",
        _prm800k({"completions": [{"rating": 1}], "chosen_completion": 0}),
        RecordError,
        [r"completions\[0\]: missing key 'text'"],
    ),
    # Math-Shepherd
    (
        "math_shepherd",
        "m.jsonl",
        _row(input="Q? Step 1: a ки", label="Q? Step 1: b +"),
        RecordError,
        [r"m\.jsonl:1 field 'label' \(near step 1\): label text differs"],
    ),
    (
        "math_shepherd",
        "m.jsonl",
        _row(input="Q? Step 1: a ки", label="Q? Step 1: a ?"),
        RecordError,
        [r"field 'label' \(step 1\): bad step label", "got '\\?'"],
    ),
    (
        "math_shepherd",
        "m.jsonl",
        _row(input="Q? Step 1: a", label="Q? Step 1: a"),
        RecordError,
        ["no step tag in input"],
    ),
    (
        "math_shepherd",
        "m.jsonl",
        _row(input="Q? a ки", label="Q? a +"),
        RecordError,
        ["cannot find where the first step starts", "'Step 1:'"],
    ),
    (
        "math_shepherd",
        "m.jsonl",
        _row(input="Q? Step 1: a ки b", label="Q? Step 1: a + b"),
        RecordError,
        ["text after the last step tag"],
    ),
    (
        "math_shepherd",
        "m.jsonl",
        _row(input="Q? Step 1: a ки"),
        RecordError,
        [r"m\.jsonl:1: missing key 'label'"],
    ),
    # TRL
    (
        "trl",
        "t.jsonl",
        _row(prompt="q", completions=["a", "b"], labels=[True]),
        RecordError,
        [r"t\.jsonl:1 field 'labels': labels count != completions count", "got 1"],
    ),
    (
        "trl",
        "t.jsonl",
        _row(prompt="q", completions=["a"], labels=[1]),
        RecordError,
        [r"t\.jsonl:1 field 'labels\[0\]': wrong type", "expected true or false"],
    ),
    (
        "trl",
        "t.jsonl",
        _row(prompt=[{"role": "user", "content": "q"}], completions=["a"], labels=[True]),
        RecordError,
        ["field 'prompt': wrong type", "apply the chat template first"],
    ),
    # OpenRLHF
    (
        "openrlhf",
        "o.jsonl",
        _row(input="Q? Step 1: a ки\nStep 2: b ки", value=["+"]),
        RecordError,
        [r"o\.jsonl:1 field 'input': placeholders count != labels count", "got 2"],
    ),
    (
        "openrlhf",
        "o.jsonl",
        _row(input="Q? Step 1: a ки", value=["good"]),
        RecordError,
        [r"field 'value\[0\]': unknown reward token", "got 'good'"],
    ),
    (
        "openrlhf",
        "o.jsonl",
        _row(input="Q? Step 1: a ки", value=[1.5]),
        RecordError,
        ["bad label value", "got 1.5"],
    ),
    (
        "openrlhf",
        "o.jsonl",
        _row(input="Q? Step 1: a ки", value=["+"], prompt="Other"),
        RecordError,
        ["input does not start with the prompt"],
    ),
    # found by tests/unit/test_fuzz_readers.py: a list here was a TypeError (unhashable)
    (
        "prm800k",
        "p.jsonl",
        _row(question={"problem": "2+2?"}, label={"steps": [], "finish_reason": []}),
        RecordError,
        [r"p\.jsonl:1 field 'label\.finish_reason': wrong type", "got 'list'"],
    ),
]


@pytest.mark.parametrize(
    ("fmt", "name", "content", "error", "patterns"),
    CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)],
)
def test_bad_input(
    tmp_path: Path, fmt: str, name: str, content: bytes, error: type, patterns: list[str]
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(error) as info:
        list(read(fmt, path, report=ConversionReport()))
    message = str(info.value)
    assert type(info.value) is error
    assert str(path) in message
    for pattern in patterns:
        assert re.search(pattern, message), (pattern, message)


def test_missing_file_and_empty_prmbench_folder(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="file not found"):
        list(read("trl", tmp_path / "nope.jsonl"))
    with pytest.raises(DataFormatError, match=r"no \.jsonl files in folder"):
        list(read("prmbench", tmp_path))


def test_cli_reports_bad_input_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "pb.json"
    path.write_bytes(_pb(label=7))
    code = main(
        ["convert", "--from", "processbench", "--to", "trl", str(path), str(tmp_path / "o.jsonl")]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "prmkit convert: error:" in err and "error index out of range" in err
    assert not (tmp_path / "o.jsonl").exists()


def test_cli_rejects_option_of_another_format(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "pb.json"
    path.write_bytes(_pb())
    code = main(
        [
            "convert",
            "--from",
            "processbench",
            "--to",
            "trl",
            str(path),
            str(tmp_path / "o.jsonl"),
            "neutral=negative",
        ]
    )
    assert code == 1
    assert "'neutral' applies to: read prm800k" in capsys.readouterr().err
    code = main(
        [
            "convert",
            "--from",
            "processbench",
            "--to",
            "trl",
            str(path),
            str(tmp_path / "o.jsonl"),
            "threshold=0.7",
            "with_id=false",
        ]
    )
    assert code == 0
    assert json.loads((tmp_path / "o.jsonl").read_text().splitlines()[0]) == {
        "prompt": "1+1?",
        "completions": ["1+1=2", "So 2."],
        "labels": [True, True],
    }


@pytest.mark.parametrize("same", ["t.jsonl", "./t.jsonl", "link.jsonl"])
def test_convert_refuses_to_write_over_its_own_input(tmp_path, monkeypatch, capsys, same):
    """`prmkit convert t.jsonl t.jsonl` replaced the data being read with the result."""
    from prmkit.cli import main
    from prmkit.records import Trace, write_records

    monkeypatch.chdir(tmp_path)
    trace = Trace(id="t", problem_id="p", prompt="1 + 1?", steps=["1 + 1 = 2"], answer="2")
    write_records("t.jsonl", [trace])
    (tmp_path / "link.jsonl").symlink_to(tmp_path / "t.jsonl")
    before = (tmp_path / "t.jsonl").read_bytes()
    assert main(["convert", "--from", "prmkit", "--to", "trl", "t.jsonl", same]) == 1
    assert "the output path is also an input" in capsys.readouterr().err
    assert (tmp_path / "t.jsonl").read_bytes() == before


def test_convert_refuses_a_report_over_an_input_and_an_output_inside_an_input_folder(
    tmp_path, capsys
):
    from prmkit.cli import main
    from prmkit.errors import ConfigError
    from prmkit.formats import convert
    from prmkit.records import Trace, write_records

    src = tmp_path / "t.jsonl"
    trace = Trace(id="t", problem_id="p", prompt="1 + 1?", steps=["1 + 1 = 2"], answer="2")
    write_records(src, [trace])
    before = src.read_bytes()
    argv = ["convert", "--from", "prmkit", "--to", "trl", str(src), str(tmp_path / "o.jsonl")]
    assert main([*argv, "--report", str(src)]) == 1
    assert "--report path is also an input" in capsys.readouterr().err
    assert src.read_bytes() == before and not (tmp_path / "o.jsonl").exists()
    folder = tmp_path / "prmbench"
    folder.mkdir()
    with pytest.raises(ConfigError, match="inside the input folder"):
        convert("prmbench", "prmkit", folder, folder / "out.jsonl")
