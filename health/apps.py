from django.apps import AppConfig


class HealthConfig(AppConfig):
    name = "health"
    verbose_name = "Deployment health: /health and manage.py doctor"
