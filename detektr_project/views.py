"""Project-wide endpoints that belong to no app."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from detektr_project.errors import allow_only
from frame_tracking import metrics as detektr_metrics
from frames.access import token_problem
from tasks import queues

# The stage queues' depth, oldest frame and consumers, read from the broker at scrape time.
QUEUES = detektr_metrics.QueueCollector(queues.readings)


@allow_only("GET", "HEAD")
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition of this web process (all of them with PROMETHEUS_MULTIPROC_DIR),
    plus the stage queues as the broker sees them. With METRICS_REQUIRE_TOKEN, only for a
    bearer token from DETEKTR_API_TOKENS."""
    if settings.METRICS_REQUIRE_TOKEN and (problem := token_problem(request)):
        return problem
    return HttpResponse(
        generate_latest(detektr_metrics.registry(QUEUES)), content_type=CONTENT_TYPE_LATEST
    )
