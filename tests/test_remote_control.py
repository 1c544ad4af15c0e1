"""The `conf` and `report` inspect commands hide every password, at any depth, and otherwise
answer what Celery's own do. (A real worker's replies: tests/e2e/test_worker_conf.py.)"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from celery import Celery
from celery.utils.serialization import jsonify, strtobool
from celery.worker import control
from celery.worker.control import report as celerys_report  # type: ignore[attr-defined]
from kombu.utils.encoding import safe_repr
from kombu.utils.json import dumps

from detektr_project import remote_control
from detektr_project.remote_control import MASK, censored, without_passwords

PASSWORD = "s3cret-9d1f"


def celery_app(**settings: Any) -> Celery:
    app = Celery("conf-test", set_as_current=False)
    app.conf.update(settings)
    return app


@pytest.mark.parametrize(
    "url, shown",
    [
        (f"redis://:{PASSWORD}@127.0.0.1:6379/2", "redis://:********@127.0.0.1:6379/2"),
        (f"amqp://user:{PASSWORD}@rabbit:5672/vhost", "amqp://user:********@rabbit:5672/vhost"),
        (f"redis://:p@ss{PASSWORD}@host/0", "redis://:********@host/0"),  # "@" in the password
        (
            f"unix:///run/redis.sock?db=1&password={PASSWORD}",
            "unix:///run/redis.sock?db=1&password=********",
        ),
        (f"--broker postgres://u:{PASSWORD}@db/x now", "--broker postgres://u:********@db/x now"),
    ],
)
def test_it_hides_the_password_of_a_url_anywhere_in_a_string(url, shown):
    assert without_passwords(url) == shown


@pytest.mark.parametrize(
    "text",
    ["redis://127.0.0.1:6379/0", "postgres://postgres@db:5432/detektr", "buffer", "a: b@c", ""],
)
def test_it_leaves_a_string_without_a_password_alone(text):
    assert without_passwords(text) == text


def test_it_hides_passwords_in_dicts_lists_and_tuples_at_any_depth():
    url = f"redis://:{PASSWORD}@127.0.0.1:6379/3"
    value = {
        "CACHES": {"default": {"LOCATION": url, "TIMEOUT": 300}},
        "REPLICAS": [url, (url, {"url": url})],
        "OPTIONS": {"sentinel_kwargs": {"password": PASSWORD}, "hosts": [{"pwd": PASSWORD}]},
    }
    shown = censored(value)
    assert PASSWORD not in repr(shown)
    assert shown["CACHES"]["default"] == {
        "LOCATION": "redis://:********@127.0.0.1:6379/3",
        "TIMEOUT": 300,
    }
    assert shown["REPLICAS"][1][1] == {"url": "redis://:********@127.0.0.1:6379/3"}
    assert shown["OPTIONS"] == {"sentinel_kwargs": {"password": MASK}, "hosts": [{"pwd": MASK}]}


def test_a_secret_looking_key_masks_its_whole_value():
    # Celery would show a dict under such a key, masking only its own secret-looking keys.
    assert censored({"API_TOKENS": {"grafana": PASSWORD}, "DATABASES": {"default": {}}}) == {
        "API_TOKENS": MASK,
        "DATABASES": MASK,
    }


def test_conf_and_dump_conf_are_ours_with_celerys_arguments():
    assert control.Panel.data["conf"] is remote_control.conf
    assert control.Panel.data["dump_conf"] is remote_control.conf
    assert control.Panel.data["report"] is remote_control.report
    meta = control.Panel.meta["conf"]
    assert (meta.type, meta.alias, meta.signature) == (
        "inspect",
        "dump_conf",
        "[include_defaults=False]",
    )
    assert meta.args == [("with_defaults", strtobool)]


@pytest.mark.parametrize("with_defaults", [False, True])
def test_conf_answers_what_celery_does_without_the_passwords(with_defaults):
    url = f"redis://:{PASSWORD}@127.0.0.1:6379/2"
    app = celery_app(
        CELERY_BROKER_URL=url,
        REDIS_URL=url,
        broker_transport_options={"sentinel_kwargs": {"password": PASSWORD}, "urls": [url]},
        task_default_queue="buffer",
    )
    state = SimpleNamespace(app=app)
    ours = remote_control.conf(state, with_defaults=with_defaults)
    celerys = jsonify(
        app.conf.table(with_defaults=with_defaults),
        keyfilter=remote_control._wanted_config_key,
        unknown_type_filter=safe_repr,
    )
    assert PASSWORD in dumps(celerys)  # the defect
    assert PASSWORD not in dumps(ours)
    assert ours.keys() == celerys.keys()
    assert ours["CELERY_BROKER_URL"] == ours["REDIS_URL"] == "redis://:********@127.0.0.1:6379/2"
    assert ours["task_default_queue"] == "buffer"


def test_report_is_celerys_without_the_passwords():
    url = f"redis://:{PASSWORD}@127.0.0.1:6379/2"
    app = celery_app(REDIS_URL=url, OPTIONS=[{"password": PASSWORD}], task_default_queue="buffer")
    report = remote_control.report(SimpleNamespace(app=app))["ok"]
    celerys = celerys_report(SimpleNamespace(app=app))["ok"]
    assert PASSWORD in celerys  # the defect
    assert PASSWORD not in report
    assert report.splitlines()[:7] == celerys.splitlines()[:7]  # software, platform, …
    assert "REDIS_URL: 'redis://:********@127.0.0.1:6379/2'" in report
    assert "task_default_queue: 'buffer'" in report


def test_error_reports_still_hide_every_url_setting_whole(settings):
    # Django's filter (errors.SettingsFilter) is its own, and stricter: not the least URL.
    from django.views.debug import get_default_exception_reporter_filter

    settings.REDIS_URL = f"redis://:{PASSWORD}@127.0.0.1:6379/2"
    safe = get_default_exception_reporter_filter().get_safe_settings()
    assert safe["REDIS_URL"] == safe["CACHES"] == "********************"
