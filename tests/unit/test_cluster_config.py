"""The Ray settings and what ``--ray`` refuses before any cluster starts (no Ray needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from prmkit.annotate.config import AnnotateConfig
from prmkit.cluster import RayConfig
from prmkit.cluster.pool import import_ray
from prmkit.config import load_config
from prmkit.errors import ConfigError
from prmkit.score import ScoreConfig

ROOT = Path(__file__).resolve().parents[2]


def test_ray_config_ranges_and_switch():
    assert not RayConfig().enabled and RayConfig(address="auto").enabled
    with pytest.raises(ConfigError, match="workers"):
        RayConfig(workers=-1)
    with pytest.raises(ConfigError, match="in_flight"):
        RayConfig(in_flight=0)
    with pytest.raises(ConfigError, match="shard_traces"):
        ScoreConfig(shard_traces=0)


def test_ray_refuses_what_it_cannot_spread():
    for method in ("judge", "exact", "consensus"):
        with pytest.raises(ConfigError, match="rollout methods only"):
            AnnotateConfig(method=method, ray=RayConfig(address="auto"))
    for method in ("mc", "binary", "omega", "scan"):
        AnnotateConfig(method=method, ray=RayConfig(address="auto"))


def test_several_servers_need_ray():
    with pytest.raises(ConfigError, match="one per server"):
        AnnotateConfig(method="mc", backend="openai", base_url="http://a/v1,http://b/v1")
    cfg = AnnotateConfig(
        method="mc",
        backend="openai",
        base_url="http://a/v1, http://b/v1",
        ray=RayConfig(address="auto"),
    )
    assert cfg.base_urls == ["http://a/v1", "http://b/v1"]


def test_missing_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ConfigError, match=r"prmkit\[ray\]"):
        import_ray()


def test_the_ray_recipe_loads():
    cfg = load_config(AnnotateConfig, ROOT / "recipes" / "annotate_ray.yaml")
    assert cfg.method == "mc" and cfg.ray.address == "auto" and cfg.policy.threads == 1
