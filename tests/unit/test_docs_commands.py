"""Every ``prmkit ...`` command in a fenced code block of README.md and docs/*.md parses.

For each command: ``prmkit <stage> --help`` works, every ``--flag`` exists in the stage's parser
(the benchmark's subparser for ``prmkit eval``), and every ``key=value`` names a field of the
stage's config dataclass with a value of the right type. Synopsis notation is allowed:
``[optional parts]``, ``...`` for elided arguments, ``a|b`` for choices, ``key=value`` itself,
and upper-case or ``<angle>`` placeholders as values.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import re
import shlex
from pathlib import Path

import pytest

from prmkit.cli import STAGES, main
from prmkit.config import load_config
from prmkit.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^\s*(```|~~~)")
_PLACEHOLDER = re.compile(r"^(<[^>]+>|[A-Z][A-Z0-9_]*)$")


def _commands(path: Path) -> list[tuple[str, str]]:
    """(``file:line``, command text) of each ``prmkit`` command in a fenced block of ``path``."""
    found: list[tuple[str, str]] = []
    in_block = last = False
    pending: tuple[int, str] | None = None
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if _FENCE.match(line):
            in_block, pending, last = not in_block, None, False
            continue
        if not in_block:
            continue
        text = line.strip()
        if pending is None and last and text and line[0].isspace():
            # an indented synopsis line continues the command above
            found[-1] = (found[-1][0], f"{found[-1][1]} {text}")
            continue
        if pending is not None:
            start, head = pending
            text = f"{head} {text}"
        elif text.startswith("$ "):
            text, start = text[2:], lineno
        else:
            start = lineno
        if text.endswith("\\"):
            pending = (start, text[:-1].rstrip())
            continue
        pending = None
        last = text.startswith("prmkit ")
        if last:
            found.append((f"{path.relative_to(ROOT)}:{start}", text))
    return found


COMMANDS = [item for path in DOCS for item in _commands(path)]


def _tokens(command: str) -> list[str]:
    """The arguments after ``prmkit``, comments dropped, synopsis brackets removed.

    ``[optional]`` and ``(a | b)`` groups lose their brackets; ``|`` and ``...`` are dropped. A
    bracket inside a value (``key=[a, b]``) stays.
    """
    tokens = []
    for token in shlex.split(command, comments=True)[1:]:
        token = token.lstrip("[(")
        while token[-1:] in ("]", ")") and token.count(token[-1]) > token.count(
            "[" if token[-1] == "]" else "("
        ):
            token = token[:-1]
        if token and token not in ("...", "|"):
            tokens.append(token)
    return tokens


def _stage_parser(
    stage: str, monkeypatch
) -> tuple[argparse.ArgumentParser, dict[argparse.ArgumentParser, type]]:
    """The stage's parser, built as ``prmkit.cli.main`` builds it, and the config dataclass of
    each (sub)parser that takes one."""
    module = importlib.import_module(STAGES[stage][0])
    seen: dict[argparse.ArgumentParser, type] = {}
    if hasattr(module, "add_config_arguments"):
        original = module.add_config_arguments

        def record(parser: argparse.ArgumentParser, cls: type, *args, **kwargs) -> None:
            seen[parser] = cls
            original(parser, cls, *args, **kwargs)

        monkeypatch.setattr(module, "add_config_arguments", record)
    parser = argparse.ArgumentParser(prog=f"prmkit {stage}")
    module.add_arguments(parser)
    return parser, seen


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(name)
    return None


def _has_subparsers(parser: argparse.ArgumentParser) -> bool:
    return any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)


def test_docs_have_commands_of_every_stage() -> None:
    stages = {_tokens(command)[0] for _, command in COMMANDS}
    assert stages >= set(STAGES) - {"demo"}  # `make demo` runs the demo
    assert len(COMMANDS) >= 40


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_documented_command_parses(where: str, command: str, monkeypatch, capsys) -> None:
    stage, *args = _tokens(command)
    assert stage in STAGES, f"{where}: unknown stage {stage!r}"
    help_argv = [stage, "--help"]
    parser, configs = _stage_parser(stage, monkeypatch)
    if _has_subparsers(parser):
        assert args, f"{where}: `prmkit {stage}` needs a sub-command"
        sub = _subparser(parser, args[0])
        assert sub is not None, f"{where}: `prmkit {stage}` has no sub-command {args[0]!r}"
        help_argv.append(args.pop(0))
        parser = sub
    config = configs.get(parser)
    with pytest.raises(SystemExit) as done:
        main(help_argv)
    assert done.value.code == 0, f"{where}: `prmkit {' '.join(help_argv)}` failed"
    assert "usage: prmkit" in capsys.readouterr().out

    flags = parser._option_string_actions
    overrides = []
    for i, arg in enumerate(args):
        if arg.startswith("-"):
            name = arg.split("=", 1)[0]
            assert name in flags, f"{where}: `prmkit {stage}` has no flag {name}"
            choices = flags[name].choices
            if choices and flags[name].nargs != 0 and i + 1 < len(args):
                for value in args[i + 1].split("|"):
                    if _PLACEHOLDER.match(value):
                        continue
                    assert value in choices, f"{where}: {name} {value!r} is not one of {choices}"
        elif "=" in arg:
            key, value = arg.split("=", 1)
            if key == "key":  # the synopsis' own `key=value`
                continue
            assert config is not None, f"{where}: `prmkit {stage}` takes no key=value ({arg})"
            keys = {f.name for f in dataclasses.fields(config)}
            # a group's key is written group.key; load_config checks the rest of the path
            assert key.split(".")[0] in keys, (
                f"{where}: {key!r} is not a config key of `prmkit {stage}`"
            )
            if not _PLACEHOLDER.match(value):
                overrides.append(arg)
    if overrides:
        try:
            load_config(config, None, overrides)
        except ConfigError as exc:
            pytest.fail(f"{where}: {exc}")
