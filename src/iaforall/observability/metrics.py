"""Prometheus metrics, one registry per app (no module-level state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "iaforall_requests",
            "Generations by model, kind (chat, completion) and outcome (ok, cancelled, error code)",
            ["model", "kind", "outcome"],
            registry=r,
        )
        self.tokens = Counter(
            "iaforall_tokens",
            "Tokens processed, by model and kind (prompt or completion)",
            ["model", "kind"],
            registry=r,
        )
        self.latency = Histogram(
            "iaforall_request_duration_seconds",
            "Time from admission request to last byte",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.first_token = Histogram(
            "iaforall_time_to_first_token_seconds",
            "Time from request to first streamed chunk",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "iaforall_queue_wait_seconds",
            "Time spent waiting for a free slot",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_length = Gauge(
            "iaforall_queue_length", "Requests waiting for a slot, by model", ["model"], registry=r
        )
        self.running = Gauge(
            "iaforall_running_requests", "Requests holding a slot, by model", ["model"], registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
