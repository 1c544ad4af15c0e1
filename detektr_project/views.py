"""Project-wide endpoints that belong to no app."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from frame_tracking import metrics as detektr_metrics
from tasks import queues

# The stage queues' depth, oldest frame and consumers, read from the broker at scrape time.
QUEUES = detektr_metrics.QueueCollector(queues.readings)


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition of this web process (all of them with PROMETHEUS_MULTIPROC_DIR),
    plus the stage queues as the broker sees them."""
    return HttpResponse(
        generate_latest(detektr_metrics.registry(QUEUES)), content_type=CONTENT_TYPE_LATEST
    )
