"""The alert rules and the Prometheus config, checked by Prometheus's own promtool (Debian's
`prometheus` package, installed by scripts/install-prometheus.sh): the files are valid, and
each alert fires on a series that should fire it and stays quiet on one that should not."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.test_metrics import declared, family_of

ROOT = Path(__file__).resolve().parents[1]
ALERTS = ROOT / "dashboards" / "alerts.yml"
ALERT_TESTS = ROOT / "dashboards" / "alerts.test.yml"
PROMETHEUS_CONFIG = ROOT / "docker" / "prometheus.yml"
# Series that come from Prometheus itself and from Flower, not from frame_tracking.metrics.
OTHER_SERIES = {"up", "flower_worker_online", "flower_events_total"}


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        pytest.fail("promtool is missing: run scripts/install-prometheus.sh")
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def rules() -> list[dict]:
    return [
        rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]
    ]


def test_promtool_accepts_the_alert_rules():
    result = promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_promtool_accepts_the_compose_stacks_prometheus_config_with_those_rules(tmp_path):
    # Laid out as compose mounts them: both files in /etc/prometheus.
    shutil.copy(PROMETHEUS_CONFIG, tmp_path / "prometheus.yml")
    shutil.copy(ALERTS, tmp_path / "alerts.yml")
    result = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: prometheus.yml is valid prometheus config file syntax" in result.stdout
    assert "SUCCESS: 1 rule files found" in result.stdout


def test_each_alert_fires_when_it_should_and_not_when_it_should_not():
    result = promtool("test", "rules", ALERT_TESTS.name, cwd=ALERT_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    cases = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in cases:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    alerts = {rule["alert"] for rule in rules()}
    assert firing == alerts
    assert quiet == alerts


def test_every_alert_queries_only_series_that_exist_and_says_what_to_run_next():
    families = declared()
    for rule in rules():
        names = set(re.findall(r"\b(detektr_\w+|flower_\w+|up)\b", rule["expr"]))
        unknown = {n for n in names if n not in OTHER_SERIES and family_of(n, families) is None}
        assert unknown == set(), rule["alert"]
        advice = rule["annotations"]["description"]
        assert re.search(r"manage\.py|trace_analyzer|celery -A detektr|/health|worker\.sh", advice)
