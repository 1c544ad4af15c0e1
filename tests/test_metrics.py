"""Metrics: the web process serves them, and the dashboard asks only for names the code emits."""

from __future__ import annotations

import json
import re
from pathlib import Path

from django.test import Client
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

from frame_tracking import metrics

DASHBOARD = Path(__file__).resolve().parents[1] / "dashboards" / "detektr.json"
SAMPLE_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


def declared() -> dict[str, str]:
    """Each metric family in frame_tracking.metrics, also those its collectors read at scrape
    time: name -> type."""
    families = {}
    collectors = [metrics.QueueCollector(list)]
    for value in [*vars(metrics).values(), *collectors]:
        if isinstance(value, MetricWrapperBase | metrics.QueueCollector):
            for family in value.describe():
                families[family.name] = family.type
    return families


def family_of(sample_name: str, families: dict[str, str]) -> str | None:
    for name, kind in families.items():
        if sample_name == name and kind == "gauge":
            return name
        if sample_name in {name + suffix for suffix in SAMPLE_SUFFIXES.get(kind, ())}:
            return name
    return None


def test_the_dashboard_queries_only_metrics_the_code_emits_and_shows_them_all():
    families = declared()
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    queried = {name for expr in expressions for name in re.findall(r"\bdetektr_\w+", expr)}
    unknown = {name for name in queried if family_of(name, families) is None}
    assert unknown == set()
    assert {family_of(name, families) for name in queried} == set(families)


def test_the_web_process_serves_prometheus_metrics(client: Client):
    metrics.FRAMES_CAPTURED.labels("cam-metrics").inc()
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert 'detektr_frames_captured_total{camera="cam-metrics"}' in response.content.decode()
    assert REGISTRY.get_sample_value("detektr_frames_captured_total", {"camera": "cam-metrics"})


def test_metrics_can_require_a_bearer_token(client: Client, settings) -> None:
    token = "metrics-token-7d41c9a0b2e85f36a1c4"
    settings.METRICS_REQUIRE_TOKEN = True
    settings.DETEKTR_API_TOKENS = [token]
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert b"detektr_" in response.content
