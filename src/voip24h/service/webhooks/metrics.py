"""The deliverer's Prometheus metrics: queue depth, delivery latency, failures per endpoint."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15)


class DeliveryMetrics:
    """Registered in ``registry`` (the server's, so /metrics shows them)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry or CollectorRegistry()
        self.registry = r
        self.queue_depth = Gauge(
            "voip24h_webhook_queue_depth", "Webhook deliveries waiting (pending).", registry=r
        )
        self.latency = Histogram(
            "voip24h_webhook_delivery_seconds",
            "Time from sending a webhook to the receiver's answer (or the failure).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.delivered = Counter(
            "voip24h_webhook_delivered", "Webhook deliveries answered 2xx.", registry=r
        )
        self.failures = Counter(
            "voip24h_webhook_failures",
            "Failed webhook delivery attempts, by endpoint.",
            ["endpoint"],
            registry=r,
        )
        self.leader = Gauge(
            "voip24h_webhook_deliverer_leader",
            "1 while this process holds the deliverer lease.",
            registry=r,
        )
