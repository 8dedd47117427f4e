"""The shipped real-data sample (tests/fixtures/data) is an exact cut of the public data sets."""

from __future__ import annotations

import importlib.util
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _cutter():
    spec = importlib.util.spec_from_file_location("cut_samples", FIXTURES / "cut_samples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_sample_file_is_listed_and_licensed(sample_data: Path) -> None:
    cutter = _cutter()
    listed = {*cutter.LINES, "processbench/math.json", *cutter.LICENSES}
    shipped = {p.relative_to(sample_data).as_posix() for p in sample_data.rglob("*") if p.is_file()}
    assert shipped == listed
    for folder in {rel.split("/")[0] for rel in listed}:
        assert (sample_data / folder / "LICENSE").is_file(), folder
    readme = (FIXTURES / "README.md").read_text(encoding="utf-8")
    for folder in ("processbench", "prmbench", "gsm8k", "math500", "prm800k", "math_shepherd"):
        assert folder in readme


def test_samples_are_byte_for_byte_cuts(sample_data: Path, shared_data: Path) -> None:
    for rel, data in _cutter().cut(shared_data).items():
        assert (sample_data / rel).read_bytes() == data, rel
