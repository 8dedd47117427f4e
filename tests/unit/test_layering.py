"""The import graph follows the record flow: no module imports a later stage (issue 12).

Every ``import prmkit.x`` / ``from prmkit.x import ...`` in ``src/prmkit`` is read with ``ast``,
including imports inside functions (a lazy import is still an edge), and each side is mapped to its
layer. An edge from a lower layer to a higher one fails, naming the file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import prmkit

SRC = Path(prmkit.__file__).parent

LAYERS: list[tuple[str, ...]] = [
    # the data layer: records and everything that reads, checks or loads them
    (
        "errors",
        "io",
        "config",
        "records",
        "steps",
        "tasks",
        "formats",
        "models",
        "prompts",
        "testing",
        "_stages",
        "cluster",  # Ray connection and the worker pool, used by annotate and score
    ),
    ("generate",),
    ("policy",),
    ("annotate",),
    ("prm",),
    ("train",),
    ("score",),
    ("evaluate", "search"),
    ("serve", "rewards"),
    ("cli", "demo", "__init__", "__main__"),  # the top of the house
]
"""Lowest first; modules within one layer may import each other."""

RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def _part(module: str) -> str:
    """``prmkit.annotate.omega`` -> ``annotate``; ``prmkit`` itself -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_of(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    return ".".join(rel.parts).removesuffix(".__init__")


def _package(path: Path) -> str:
    module = _module_of(path)
    return module if path.name == "__init__.py" else module.rsplit(".", 1)[0]


def _imports(source: str, package: str) -> list[tuple[int, str]]:
    """``(line, module)`` of every prmkit import in ``source`` (a module of ``package``)."""
    tree = ast.parse(source)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("prmkit")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            if name.startswith("prmkit"):
                out.append((node.lineno, name))
    return out


def test_every_module_has_a_layer():
    parts = {_part(_module_of(p)) for p in SRC.rglob("*.py")}
    assert parts <= set(RANK), f"modules with no layer: {sorted(parts - set(RANK))}"


def test_no_module_imports_a_later_stage():
    backward = []
    for path in sorted(SRC.rglob("*.py")):
        here = _part(_module_of(path))
        for line, name in _imports(path.read_text(encoding="utf-8"), _package(path)):
            there = _part(name)
            if name == "prmkit" or there not in RANK:
                continue
            if RANK[there] > RANK[here]:
                backward.append(f"{path.relative_to(SRC.parent)}:{line} ({here}) imports {name}")
    assert not backward, "backward imports:\n" + "\n".join(backward)


def test_the_walker_sees_lazy_and_relative_imports():
    """The check itself: an import inside a function and a relative import are both edges."""
    source = "def f():\n    import prmkit.search.engine\nfrom ..score import x\n"
    names = {n for _, n in _imports(source, "prmkit.annotate")}
    assert names == {"prmkit.search.engine", "prmkit.score"}
