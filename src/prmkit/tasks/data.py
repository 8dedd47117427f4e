"""Where the real data sets live: an explicit path, ``$PRMKIT_DATA_DIR``, or ``../shared/data``.

``../shared/data`` is looked up beside the repository that holds this package (an editable
install) and beside the current directory, in that order.
"""

from __future__ import annotations

import os
from pathlib import Path

from prmkit.errors import DataFormatError

__all__ = ["DATA_ENV", "data_file"]

DATA_ENV = "PRMKIT_DATA_DIR"


def _candidates(data_dir: str | os.PathLike[str] | None) -> list[Path]:
    if data_dir is not None:
        return [Path(data_dir)]
    if os.environ.get(DATA_ENV):
        return [Path(os.environ[DATA_ENV])]
    repo = Path(__file__).resolve().parents[3]
    return [repo.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]


def data_file(relative: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The path of ``relative`` (e.g. ``gsm8k/test.jsonl``) inside the data folder.

    Raises:
        DataFormatError: the file is in none of the places looked at (they are listed).
    """
    tried = [folder / relative for folder in _candidates(data_dir)]
    for path in tried:
        if path.is_file():
            return path
    raise DataFormatError(
        "data file not found",
        got=[str(p) for p in tried],
        expected=f"the file {relative} in the data folder",
        fix=f"pass data_dir=..., or set {DATA_ENV} to the folder holding {relative.split('/')[0]}/",
    )
