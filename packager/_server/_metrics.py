"""Prometheus metrics, kept as plain numbers on the event loop and rendered at scrape time.

Recording a request is a few list increments, without locks: requests are
recorded on the event loop thread, and stage timings either there or by
worker threads taking turns under one lock (see _flow.py); a collector in the app's own
CollectorRegistry turns them into metric families when /metrics is read.
The process-wide default registry (process stats, and any metrics the model
registers itself) is appended to the output. prometheus_client is imported
at the first scrape, not at start-up (it costs ~30 ms to import).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import HistogramMetricFamily, Metric

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
STAGES = ("preprocess", "predict", "postprocess", "predict_batch", "init", "load")


class Histogram:
    """Bucket counts and a sum; `observe` is a bisect and two additions."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative (le, count) pairs, ending with +Inf."""
        out, running = [], 0
        for bound, count in zip((*map(_le, self.bounds), "+Inf"), self.counts):
            running += count
            out.append((bound, float(running)))
        return out


def _le(bound: float) -> str:
    return repr(float(bound))


class Metrics:
    """What the server records; `gauges` supplies in-flight and queue numbers at scrape time."""

    def __init__(self, model: str, gauges: Callable[[], dict[str, float]]) -> None:
        self.model = model
        self.statuses: dict[int, int] = {}
        self.latency = Histogram(LATENCY_BUCKETS)
        self.stages = {stage: Histogram(LATENCY_BUCKETS) for stage in STAGES}
        self.batch_sizes = Histogram(BATCH_BUCKETS)
        self.load_seconds: float | None = None
        self._gauges = gauges
        self._registry: Optional[CollectorRegistry] = None

    def request(self, status: int, seconds: float) -> None:
        """Count one predict request and its latency."""
        statuses = self.statuses
        statuses[status] = statuses.get(status, 0) + 1
        self.latency.observe(seconds)

    def stage(self, stage: str, seconds: float) -> None:
        """Time spent in one pipeline stage (the runner's observer)."""
        histogram = self.stages.get(stage)
        if histogram is not None:
            histogram.observe(seconds)

    @property
    def registry(self) -> CollectorRegistry:
        """This app's own CollectorRegistry (made at first use)."""
        if self._registry is None:
            from prometheus_client import CollectorRegistry

            self._registry = CollectorRegistry(auto_describe=False)
            self._registry.register(_Collector(self))
        return self._registry

    def render(self) -> bytes:
        """The text exposition: this app's metrics, then the process-wide registry's."""
        from prometheus_client import REGISTRY, generate_latest

        return generate_latest(self.registry) + generate_latest(REGISTRY)


class _Collector:
    """Turns a Metrics' numbers into metric families when the registry is collected."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        m, model = self._m, [self._m.model]
        requests = CounterMetricFamily(
            "packager_requests", "Predict requests answered, by HTTP status.", labels=["model", "status"]
        )
        for status, count in sorted(m.statuses.items()):
            requests.add_metric([m.model, str(status)], count)
        yield requests
        yield _histogram("packager_request_duration_seconds", "Predict request latency.", m.latency, model)
        stages = HistogramMetricFamily(
            "packager_stage_duration_seconds", "Time in each pipeline stage.", labels=["model", "stage"]
        )
        for stage, histogram in m.stages.items():
            if any(histogram.counts):
                stages.add_metric([m.model, stage], histogram.buckets(), histogram.total)
        yield stages
        yield _histogram("packager_batch_size", "Requests per predict_batch call.", m.batch_sizes, model)
        yield from self._gauges(model)

    def _gauges(self, model: list[str]) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        values = self._m._gauges()
        helps = {
            "packager_requests_in_flight": "Predict requests being served now.",
            "packager_queue_depth": "Predict requests waiting for a model slot or a batch.",
            "packager_model_ready": "1 while the model is loaded and healthy, and not every slot is stuck.",
            "packager_predict_slots": "Predict calls that may run at once (runtime.predict_concurrency).",
            "packager_predict_slots_stuck": "Predict slots held by calls whose request already gave up on them.",
        }
        for name, help_text in helps.items():
            gauge = GaugeMetricFamily(name, help_text, labels=["model"])
            gauge.add_metric(model, values.get(name, 0.0))
            yield gauge
        if self._m.load_seconds is not None:
            gauge = GaugeMetricFamily(
                "packager_model_load_seconds", "How long loading the model took.", labels=["model"]
            )
            gauge.add_metric(model, self._m.load_seconds)
            yield gauge


def _histogram(name: str, help_text: str, histogram: Histogram, labels: list[str]) -> HistogramMetricFamily:
    from prometheus_client.core import HistogramMetricFamily

    family = HistogramMetricFamily(name, help_text, labels=["model"])
    family.add_metric(labels, histogram.buckets(), histogram.total)
    return family
