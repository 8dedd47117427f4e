"""The training-state folder: the Trainer's checkpoints of a run, kept so it can resume.

prmkit marks the folders it creates (:data:`STATE_MARKER`) and only ever reuses or deletes a
marked one; a folder holding an earlier run's checkpoints is resumed or replaced only when asked.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from prmkit.errors import ConfigError

__all__ = ["STATE_MARKER", "latest_checkpoint", "prepare_state_dir"]

STATE_MARKER = ".prmkit-train-state"
"""The file that marks a folder as prmkit's training state (Trainer checkpoints); prmkit only
ever deletes or reuses a state folder that carries it."""


def latest_checkpoint(state_dir: str | Path) -> Path | None:
    """The newest complete Trainer checkpoint under ``state_dir`` (``checkpoint-N`` with its
    ``trainer_state.json``, the last file the Trainer writes); ``None`` when there is none."""
    found = []
    for path in Path(state_dir).glob("checkpoint-*"):
        step = path.name.removeprefix("checkpoint-")
        if step.isdigit() and _complete(path / "trainer_state.json"):
            found.append((int(step), path))
    return max(found)[1] if found else None


def _complete(state_file: Path) -> bool:
    """The trainer state exists and parses (a kill mid-write leaves it cut short)."""
    try:
        json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def prepare_state_dir(state_dir: str | Path, *, resume: bool, overwrite: bool = False) -> Path:
    """Make ``state_dir`` ready for a run; refuse anything prmkit did not create.

    A new or empty folder gets the :data:`STATE_MARKER`. A marked folder with checkpoints is
    kept for ``resume`` or cleared with ``overwrite``; otherwise it is an error, so a finished
    part of a run is never lost by accident.

    Raises:
        ConfigError: the folder holds files prmkit did not write, or holds a run's
            checkpoints and neither ``resume`` nor ``overwrite`` was asked.
    """
    path = Path(state_dir)
    if path.exists() and any(path.iterdir()):
        if not (path / STATE_MARKER).exists():
            raise ConfigError(
                "the training-state folder holds files prmkit did not write",
                got=str(path),
                expected=f"a new or empty folder, or one marked with {STATE_MARKER}",
                fix="pick another state_dir (prmkit never deletes files it did not create)",
            )
        has_run = latest_checkpoint(path) is not None
        if has_run and overwrite and not resume:
            shutil.rmtree(path)
        elif has_run and not resume:
            raise ConfigError(
                "an earlier run's checkpoints are in the training-state folder",
                got=str(latest_checkpoint(path)),
                expected="resume=true to continue that run, or overwrite=true to start over",
                fix="pass resume=true (the same data and settings), or overwrite=true",
            )
    path.mkdir(parents=True, exist_ok=True)
    (path / STATE_MARKER).touch()
    return path
