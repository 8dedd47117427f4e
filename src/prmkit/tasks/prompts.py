"""Prompt templates: text files in ``prmkit/prompts/``, never string defaults in code.

A template holds ``{question}`` where the problem text goes (plain replacement, so LaTeX braces in
templates and questions need no escaping).

Example:
    >>> from prmkit.tasks.arithmetic import build_problem
    >>> print(render_prompt(build_problem(3, [("+", 4)], id="p")))
    Tom has 3 apples. He buys 4 more. How many apples does Tom have now?
    Solve it step by step, one operation per step, and end with "The answer is N."
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from prmkit.errors import ConfigError
from prmkit.records import Problem

__all__ = ["TASK_TEMPLATES", "load_prompt", "render_prompt"]

TASK_TEMPLATES: dict[str, str] = {"arithmetic": "arithmetic", "gsm8k": "gsm8k", "math500": "math"}
"""The default template of each task (a name in ``prmkit/prompts/``, without ``.txt``)."""


@cache
def load_prompt(name: str) -> str:
    """The text of template ``name`` (``prmkit/prompts/<name>.txt``), without the final newline.

    Raises:
        ConfigError: no such template.
    """
    path = resources.files("prmkit") / "prompts" / f"{name}.txt"
    if not path.is_file():
        names = sorted(
            p.name[:-4]
            for p in (resources.files("prmkit") / "prompts").iterdir()
            if p.name.endswith(".txt")
        )
        raise ConfigError(
            "unknown prompt template",
            got=name,
            expected=f"one of {names}",
            fix="pick a listed template or add prmkit/prompts/<name>.txt",
        )
    return path.read_text(encoding="utf-8").rstrip("\n")


def render_prompt(problem: Problem, template: str | None = None) -> str:
    """The problem's question inside a template (default: the template of its task).

    A problem of unknown task without ``template`` gets its bare question.
    """
    name = template or TASK_TEMPLATES.get(str(problem.meta.get("task", "")))
    if name is None:
        return problem.prompt
    return load_prompt(name).replace("{question}", problem.prompt)
