"""Prometheus metrics per app: requests, latency and errors by route template."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "zhilian_http_requests_total", "HTTP requests", ["route", "method", "status"], registry=self.registry
        )
        self.errors = Counter(
            "zhilian_http_errors_total", "HTTP responses with status >= 400", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "zhilian_http_request_duration_seconds",
            "HTTP request latency",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )

    def observe(self, *, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)
        if status >= 400:
            self.errors.labels(route, str(status)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
