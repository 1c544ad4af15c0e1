from django.contrib import admin
from django.urls import path

from detektr_project.views import metrics
from frames import views
from health.views import health

# The frame list needs the screen's width: no app sidebar beside it (the breadcrumbs and the
# home page lead everywhere it did).
admin.site.enable_nav_sidebar = False
admin.site.site_header = "detektr"

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

# JSON under /frames, /health and /metrics; Django's pages elsewhere (the admin).
handler400 = "detektr_project.errors.bad_request"
handler403 = "detektr_project.errors.permission_denied"
handler404 = "detektr_project.errors.not_found"
handler500 = "detektr_project.errors.server_error"
