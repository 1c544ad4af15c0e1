"""docker/compose.yaml, read as data. Docker cannot run on the machines that test detektr, so
this checks what can be checked without it, and the same processes run outside containers in
the other tests: every service's command exists in the project, every mounted file exists and
is one that a test validates, every variable the code reads is set or documented in
docker/.env.example, and no password has a default."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import get_commands
from docker.utils.build import exclude_paths

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
COMPOSE_TEXT = (DOCKER / "compose.yaml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
ENV_EXAMPLE = (DOCKER / ".env.example").read_text()
# Services built from docker/Dockerfile: detektr's own processes.
OURS = {name: service for name, service in SERVICES.items() if "build" in service}

# Each mounted file, and the test that proves it is right.
VALIDATED = {
    "docker/prometheus.yml": "tests/test_alerts.py (promtool check config)",
    "dashboards/alerts.yml": "tests/test_alerts.py (promtool check and test rules)",
    "dashboards/detektr.json": "tests/test_metrics.py, tests/e2e/test_prometheus.py",
    "docker/jaeger.yaml": "test_jaeger_keeps_traces_in_badger_on_its_volume_for_the_retention",
    "docker/grafana/datasources.yaml": "test_grafana_gets_both_datasources_and_the_dashboard",
    "docker/grafana/dashboards.yaml": "test_grafana_gets_both_datasources_and_the_dashboard",
}
# The standard OpenTelemetry variables detektr documents as honoured (the SDK reads them).
OTEL_STANDARD = {
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_RESOURCE_ATTRIBUTES",
}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|AUTH|KEY")


def dockerfile_cmd() -> list[str]:
    match = re.search(r"^CMD (\[.*\])$", (DOCKER / "Dockerfile").read_text(), re.M)
    assert match
    return list(json.loads(match[1]))


def command_of(service: dict[str, Any]) -> list[str]:
    return list(service.get("command") or dockerfile_cmd())


def celery_subcommand_exists(subcommand: str) -> bool:
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "detektr", subcommand, "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return result.returncode == 0


@pytest.mark.parametrize("name", sorted(OURS))
def test_every_detektr_service_runs_a_command_the_project_has(name: str):
    command = command_of(OURS[name])
    program = command[0]
    if command[:2] == ["python", "manage.py"]:
        assert command[2] in get_commands(), command
    elif program.startswith("scripts/"):
        script = ROOT / program
        assert script.is_file() and script.stat().st_mode & 0o111, program
    elif command[:3] == ["celery", "-A", "detektr"]:
        assert celery_subcommand_exists(command[3]), command
    elif program == "gunicorn":  # from requirements.txt, as outside the image
        check = subprocess.run([sys.executable, "-m", "gunicorn", "--check-config", *command[1:]],
                               cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert check.returncode == 0, check.stdout + check.stderr
    else:
        pytest.fail(f"{name}: unknown command {command}")


def mounts() -> list[tuple[str, str, str]]:
    """(service, file in the repo, where it is mounted) for every bind mount."""
    found = []
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                path = (DOCKER / source).resolve().relative_to(ROOT)
                found.append((name, str(path), target))
    return found


def test_every_mounted_file_exists_and_is_one_the_tests_validate():
    assert mounts()
    for service, path, _ in mounts():
        assert (ROOT / path).is_file(), f"{service} mounts {path}, which does not exist"
        assert path in VALIDATED, f"{service} mounts {path}, which no test validates"


def test_prometheus_finds_its_rules_where_compose_mounts_them():
    targets = {path: target for _, path, target in mounts()}
    config = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    config_dir = Path(targets["docker/prometheus.yml"]).parent
    assert [str(config_dir / rule) for rule in config["rule_files"]] == [
        targets["dashboards/alerts.yml"]
    ]


def test_prometheus_scrapes_web_every_worker_every_capture_and_flower():
    config = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    scraped = {
        target for job in config["scrape_configs"] for group in job["static_configs"]
        for target in group["targets"]
    }  # fmt: skip
    expected = {"web:8000", "flower:5555"}
    for name, service in OURS.items():
        command = command_of(service)
        if command[0] == "scripts/worker.sh":
            expected.add(f"{name}:9808")
        if "capture" in command:
            expected.add(f"{name}:{command[command.index('--metrics-port') + 1]}")
    assert scraped == expected
    workers = [name for name in OURS if command_of(OURS[name])[0] == "scripts/worker.sh"]
    queues = {command_of(OURS[name])[command_of(OURS[name]).index("-Q") + 1] for name in workers}
    assert queues == {"buffer", "process", "store"}  # one worker per stage queue


def variables_the_code_reads() -> set[str]:
    names: set[str] = set()
    patterns = [
        r"os\.environ(?:\.get)?[\[(]\"([A-Z][A-Z0-9_]+)\"",
        r"\benv_\w+\(\s*\"([A-Z][A-Z0-9_]+)\"",
        r"_VARIABLE(?:, \w+)? = \"([A-Z][A-Z0-9_]+)\"",
    ]
    packages = ("detektr_project", "frame_tracking", "frames", "health", "tasks", "workers")
    # The top level too: flowerconfig.py is what `celery -A detektr flower` reads.
    sources = [*ROOT.glob("*.py"), *(path for p in packages for path in (ROOT / p).rglob("*.py"))]
    for source in sources:
        text = source.read_text()
        for pattern in patterns:
            names.update(re.findall(pattern, text))
    for script in (ROOT / "scripts").glob("*.sh"):
        names.update(re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", script.read_text()))
    return names - {"BASH_SOURCE", "PACKAGES", "SUDO"}  # the scripts' own shell variables


def test_every_variable_the_code_reads_is_set_or_in_the_env_example():
    set_by_compose = set(COMPOSE["x-detektr"]["environment"])
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE, re.M))
    read = variables_the_code_reads() | OTEL_STANDARD
    assert {"DATABASE_URL", "REDIS_URL", "OTEL_TRACES_EXPORTER", "CAMERA_READ_TIMEOUT_MS"} <= read
    assert read - set_by_compose - documented == set()


def test_no_password_or_secret_has_a_default():
    for variable, default in re.findall(r"\$\{(\w+):?-([^}]*)\}", COMPOSE_TEXT):
        if SECRET_NAME.search(variable):
            assert default == "", f"${{{variable}}} defaults to {default!r}"
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE_TEXT))
    assert {"POSTGRES_PASSWORD", "SECRET_KEY", "FLOWER_BASIC_AUTH", "GRAFANA_ADMIN_PASSWORD"} <= (
        required
    )
    for name in required:  # the example leaves them empty: compose refuses to start until set
        assert re.search(rf"^{name}=\s*(#.*)?$", ENV_EXAMPLE, re.M), name
    assert not re.search(r"(PASSWORD|SECRET_KEY)\w*: [^$\s]", COMPOSE_TEXT)


def test_long_running_services_have_healthchecks_and_wait_for_what_they_need():
    for name, service in SERVICES.items():
        if service.get("restart") == "no":
            continue  # one-shot: migrate, the volume's chown
        if name != "jaeger":  # its image has no shell tool to probe with; nothing waits on it
            assert "healthcheck" in service, name
        for needed, condition in (service.get("depends_on") or {}).items():
            assert needed in SERVICES, f"{name} waits for unknown {needed}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[needed], f"{name} waits on {needed}'s health"


def test_flower_requires_a_login_and_is_bound_to_this_host():
    flower = SERVICES["flower"]
    assert any(arg.startswith("--basic-auth=${FLOWER_BASIC_AUTH:?") for arg in flower["command"])
    published = [port for service in SERVICES.values() for port in service.get("ports", [])]
    assert published and all(port.startswith("127.0.0.1:") for port in published)


def test_jaeger_keeps_traces_in_badger_on_its_volume_for_the_retention():
    config = yaml.safe_load((DOCKER / "jaeger.yaml").read_text())
    jaeger = SERVICES["jaeger"]
    volume = next(v for v in jaeger["volumes"] if v.startswith("jaegerdata:"))
    mount = volume.split(":")[1]
    [(store, backend)] = config["extensions"]["jaeger_storage"]["backends"].items()
    badger = backend["badger"]
    assert badger["ephemeral"] is False
    assert all(path.startswith(mount + "/") for path in badger["directories"].values())
    assert badger["ttl"]["spans"] == "${env:TRACE_RETENTION:-168h}"
    assert jaeger["environment"]["TRACE_RETENTION"] == "${TRACE_RETENTION:-168h}"
    assert config["extensions"]["jaeger_query"]["storage"]["traces"] == store
    assert config["exporters"]["jaeger_storage_exporter"]["trace_storage"] == store
    # Where the detektr processes send spans and where doctor queries them.
    env = COMPOSE["x-detektr"]["environment"]
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "0.0.0.0:4318"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
    assert config["extensions"]["jaeger_query"]["http"]["endpoint"] == "0.0.0.0:16686"
    assert env["JAEGER_QUERY_URL"] == "http://jaeger:16686"


def test_grafana_gets_both_datasources_and_the_dashboard():
    datasources = yaml.safe_load((DOCKER / "grafana" / "datasources.yaml").read_text())
    urls = {source["type"]: source["url"] for source in datasources["datasources"]}
    assert urls == {"prometheus": "http://prometheus:9090", "jaeger": "http://jaeger:16686"}
    providers = yaml.safe_load((DOCKER / "grafana" / "dashboards.yaml").read_text())
    [provider] = providers["providers"]
    targets = {path: target for service, path, target in mounts() if service == "grafana"}
    assert str(Path(targets["dashboards/detektr.json"]).parent) == provider["options"]["path"]
    dashboard = json.loads((ROOT / "dashboards" / "detektr.json").read_text())
    [variable] = dashboard["templating"]["list"]
    assert variable["query"] == "prometheus"  # picks the provisioned Prometheus datasource


def test_the_rabbitmq_profile_runs_a_broker_that_every_detektr_process_can_use(monkeypatch):
    rabbitmq = SERVICES["rabbitmq"]
    assert rabbitmq["profiles"] == ["rabbitmq"]  # off unless COMPOSE_PROFILES=rabbitmq
    assert "healthcheck" in rabbitmq
    assert any(volume.endswith(":/var/lib/rabbitmq") for volume in rabbitmq["volumes"])
    assert rabbitmq["environment"]["RABBITMQ_DEFAULT_PASS"] == "${RABBITMQ_PASSWORD:-}"
    for name, service in OURS.items():
        assert service["environment"]["CELERY_BROKER_URL"].startswith("${CELERY_BROKER_URL:-"), name
        if "rabbitmq" in (service.get("depends_on") or {}):
            assert service["depends_on"]["rabbitmq"]["required"] is False, name
    # The URL docker/.env.example shows is one detektr's settings accept, with that vhost.
    example = re.search(r"^# CELERY_BROKER_URL=(amqp://\S+)$", ENV_EXAMPLE, re.M)
    assert example, "docker/.env.example shows no amqp:// CELERY_BROKER_URL"
    url = example[1].replace("${RABBITMQ_PASSWORD}", "secret")
    assert url.endswith("@rabbitmq:5672/" + rabbitmq["environment"]["RABBITMQ_DEFAULT_VHOST"])
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    from detektr_project.settings import env_url

    assert env_url("CELERY_BROKER_URL", "", ("amqp",)) == url


def test_the_image_leaves_out_the_checkouts_secrets_and_local_state(tmp_path):
    """`docker build` sends compose's build context, the repository root, and leaves out what
    .dockerignore names, read and matched here by docker-py (docker's rules, as its build()
    reads the file) against a checkout's kinds of files."""
    assert OURS["web"]["build"]["context"] == ".."  # docker/.. : the repository root
    checkout = {
        "var/secret_key": False,  # the laptop SECRET_KEY settings.py writes
        "var/spans/1234.spool": False,
        "var/capture/cam01.journal": False,
        "docker/.env": False,  # the stack's passwords
        ".venv/bin/python": False,
        ".git/config": False,
        "frames/__pycache__/models.cpython-311.pyc": False,
        "db.sqlite3": False,
        "requirements.txt": True,  # the Dockerfile's first COPY
        "manage.py": True,
        "detektr_project/settings.py": True,
        "frames/models.py": True,
        "templates/admin/frames/journey.html": True,
        "docker/.env.example": True,
        "scripts/worker.sh": True,
    }
    for path in checkout:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("x")
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]

    sent = set(exclude_paths(str(tmp_path), patterns, dockerfile="docker/Dockerfile"))

    assert {path for path, kept in checkout.items() if kept} <= sent
    assert {path for path, kept in checkout.items() if not kept} & sent == set()
