"""Prometheus metrics of one server (its own registry, so several apps can share a process).

``GET /metrics`` shows:

* ``prmkit_requests_total{route, status}``: requests answered, by route template and status.
* ``prmkit_request_seconds{route}``: latency histogram (arrival to last byte).
* ``prmkit_batch_traces``: traces per forward pass (histogram); ``prmkit_batch_tokens``: tokens.
* ``prmkit_batch_seconds``: seconds per forward pass.
* ``prmkit_queue_traces``: traces waiting for a forward pass (gauge).
* ``prmkit_traces_scored_total``, ``prmkit_tokens_scored_total``, ``prmkit_steps_scored_total``.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "Metrics"]

_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_TOKEN_BUCKETS = (64, 256, 1024, 4096, 16384, 65536, 262144)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """The counters, gauges and histograms of one app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "prmkit_requests", "requests answered", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "prmkit_request_seconds",
            "request latency, arrival to response",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_traces = Histogram(
            "prmkit_batch_traces", "traces per forward pass", buckets=_BATCH_BUCKETS, registry=r
        )
        self.batch_tokens = Histogram(
            "prmkit_batch_tokens", "tokens per forward pass", buckets=_TOKEN_BUCKETS, registry=r
        )
        self.batch_seconds = Histogram(
            "prmkit_batch_seconds",
            "seconds per forward pass",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue = Gauge("prmkit_queue_traces", "traces waiting for a forward pass", registry=r)
        self.traces = Counter("prmkit_traces_scored", "traces scored", registry=r)
        self.tokens = Counter("prmkit_tokens_scored", "tokens scored", registry=r)
        self.steps = Counter("prmkit_steps_scored", "step scores computed", registry=r)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
