"""Config loading (unknown keys are errors) and the CLI shell."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from prmkit.config import config_help, load_config, option
from prmkit.errors import ConfigError


@dataclass
class Cfg:
    n: int = option(4, "how many problems")
    temperature: float = option(0.7, "sampling temperature")
    name: str = option("smollm2", "model name or path")
    tags: list[str] = option(["a"], "free tags")
    limit: int | None = option(None, "optional cap")


def test_defaults_yaml_then_overrides(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("n: 8\ntemperature: 1\nname: x\n")
    cfg = load_config(Cfg, recipe, ["name=y", "tags=[b, c]", "limit=3"])
    assert cfg == Cfg(n=8, temperature=1.0, name="y", tags=["b", "c"], limit=3)
    assert isinstance(cfg.temperature, float)


def test_exponent_floats_without_a_dot_are_floats(tmp_path):
    """YAML 1.1 reads ``1e-3`` as a string; a float key takes it as 0.001 anyway."""
    assert load_config(Cfg, None, ["temperature=1e-3"]).temperature == pytest.approx(0.001)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("temperature: 2E+1\n")
    assert load_config(Cfg, recipe).temperature == 20.0
    with pytest.raises(ConfigError, match="wrong type for 'temperature'"):
        load_config(Cfg, None, ["temperature=e-3"])


def test_list_default_is_not_shared():
    a, b = Cfg(), Cfg()
    a.tags.append("z")
    assert b.tags == ["a"]


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["nn=3"], "unknown config key for Cfg"),
        (["n=three"], "wrong type for 'n'"),
        (["n=1.5"], "wrong type for 'n'"),
        (["limit=x"], "wrong type for 'limit'"),
        (["novalue"], "malformed override"),
    ],
)
def test_bad_overrides_raise(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config(Cfg, None, overrides)


def test_unknown_key_in_yaml_names_the_file(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("n: 2\nsamples: 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(Cfg, recipe)
    assert "r.yaml" in str(info.value) and "'samples'" in str(info.value)


def test_yaml_must_be_a_mapping(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="not a mapping"):
        load_config(Cfg, recipe)


def test_help_lists_every_field():
    text = config_help(Cfg)
    for name in ("n", "temperature", "name", "tags", "limit"):
        assert f"  {name} (" in text
    assert "sampling temperature" in text


def test_cli_help_lists_stages():
    out = subprocess.run(
        [sys.executable, "-m", "prmkit.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "convert" in out and "demo" in out


def test_cli_every_stage_has_help():
    from prmkit.cli import STAGES

    for stage in STAGES:
        proc = subprocess.run(
            [sys.executable, "-m", "prmkit.cli", stage, "--help"], capture_output=True, text=True
        )
        assert proc.returncode == 0, (stage, proc.stderr[-2000:])
        assert "usage: prmkit " + stage in proc.stdout


@dataclass
class _Group:
    model: str = field(default="smollm2", metadata={"help": "the model"})
    threads: int = field(default=1, metadata={"help": "threads", "range": {"ge": 1}})


@dataclass
class _WithGroup:
    n: int = field(default=2, metadata={"help": "how many"})
    policy: _Group = field(default_factory=_Group, metadata={"help": "the policy"})
    judge: _Group = field(
        default_factory=lambda: _Group(model="judge-model"), metadata={"help": "the judge"}
    )


def test_a_group_of_keys_loads_from_yaml_and_dotted_overrides(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("policy:\n  model: /models/a\n  threads: 4\n")
    cfg = load_config(_WithGroup, recipe, ["policy.model=/models/b", "n=3"])
    assert (cfg.n, cfg.policy.model, cfg.policy.threads) == (3, "/models/b", 4)
    assert load_config(_WithGroup).policy == _Group()
    help_text = config_help(_WithGroup)
    assert "  policy.model (str, default 'smollm2'): the model" in help_text
    assert "policy.threads (int, default 1, >= 1)" in help_text
    # a group lists the defaults the stage gives it, not the group class's own
    assert "  judge.model (str, default 'judge-model'): the model" in help_text
    # ... and setting one of its keys keeps the stage's other defaults
    judge = load_config(_WithGroup, None, ["judge.threads=3"]).judge
    assert (judge.model, judge.threads) == ("judge-model", 3)


@pytest.mark.parametrize(
    ("overrides", "message", "got"),
    [
        (["policy.nope=1"], "unknown config key", "policy.nope"),
        (["policy=x"], "'policy' is a group of keys", "x"),
        (["policy.threads=0"], "'policy.threads' out of range", "0"),
    ],
)
def test_a_group_of_keys_refuses_bad_keys_by_their_dotted_name(overrides, message, got):
    with pytest.raises(ConfigError, match=message) as info:
        load_config(_WithGroup, None, overrides)
    assert got in str(info.value)


@dataclass
class _WithFlags:
    out: str = field(default="", metadata={"help": "output file"})
    max_new_tokens: int = field(default=8, metadata={"help": "tokens", "range": {"ge": 1}})
    resume: bool = field(default=False, metadata={"help": "resume"})
    policy: _Group = field(default_factory=_Group, metadata={"help": "the policy"})


def test_shortcut_flags_are_exactly_key_value_overrides(tmp_path):
    import argparse

    from prmkit.config import add_config_arguments, stage_config

    parser = argparse.ArgumentParser()
    add_config_arguments(
        parser,
        _WithFlags,
        {
            "--out": "out",
            "--max-new-tokens": "max_new_tokens",
            "--resume": "resume",
            "--policy": "policy.model",
        },
    )
    recipe = tmp_path / "r.yaml"
    recipe.write_text("out: from_yaml.jsonl\nmax_new_tokens: 4\n")
    args = parser.parse_args(
        ["--config", str(recipe), "--max-new-tokens", "16", "--resume", "--policy", "/m"]
    )
    cfg = stage_config(_WithFlags, args)
    assert (cfg.out, cfg.max_new_tokens, cfg.resume, cfg.policy.model) == (
        "from_yaml.jsonl",
        16,
        True,
        "/m",
    )
    with pytest.raises(ConfigError, match="'max_new_tokens' out of range"):
        stage_config(_WithFlags, parser.parse_args(["--max-new-tokens", "0"]))
    assert "(same as policy.model=...)" in parser.format_help()
