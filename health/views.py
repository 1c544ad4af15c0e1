"""GET /health: can this deployment take frames? For load balancers and compose healthchecks."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from detektr_project.errors import allow_only
from health.checks import HEALTH, Status


@allow_only("GET", "HEAD")
def health(request: HttpRequest) -> JsonResponse:
    """200 when the database answers and is migrated and Redis and the broker answer; 503
    naming what failed otherwise. Open to anyone: it shows check names and states only, no
    addresses, errors or versions (`manage.py doctor` gives those to an operator)."""
    results = [check() for check in HEALTH]
    failed = [result.check for result in results if result.status is Status.FAIL]
    body = {
        "status": "fail" if failed else "ok",
        "checks": {result.check: result.status.value.lower() for result in results},
        "failed": failed,
    }
    return JsonResponse(body, status=503 if failed else 200)
