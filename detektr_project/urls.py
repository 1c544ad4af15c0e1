from django.contrib import admin
from django.urls import path

from detektr_project.views import metrics
from frames import views
from health.views import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("metrics", metrics, name="metrics"),
    path("health", health, name="health"),
    path("frames", views.frame_list, name="frame-list"),
    # Before <frame_id>: "openapi.json" would otherwise be taken for a (malformed) frame id.
    path("frames/openapi.json", views.openapi, name="frame-openapi"),
    path("frames/report", views.frame_report, name="frame-report"),
    path("frames/test", views.send_test_frame, name="frame-test"),
    path("frames/<str:frame_id>", views.frame_detail, name="frame-detail"),
]
