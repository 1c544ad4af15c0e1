"""detektr settings: one file, fed by environment variables, with laptop defaults.

Every value is read through a tiny helper that rejects malformed input at start-up with a
message naming the variable, so a typo never turns into a half-working deployment.
"""

from __future__ import annotations

import math
import os
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from celery.app.trace import LOG_SUCCESS
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key
from kombu import Exchange, Queue

from frame_tracking import logs, telemetry

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use true or false)")


def env_number(
    name: str, default: float, *, minimum: float = 0, maximum: float = math.inf
) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from None
    # NaN passes every bound (each comparison with it is false), and neither it nor an
    # infinity is a setting anyone means.
    if not math.isfinite(number):
        raise ImproperlyConfigured(f"{name}={value!r} is not a finite number")
    if number < minimum:
        raise ImproperlyConfigured(f"{name}={value!r} must be at least {minimum}")
    if number > maximum:
        raise ImproperlyConfigured(f"{name}={value!r} must be at most {maximum}")
    return number


def env_int(name: str, default: int, *, minimum: int = 0, maximum: float = math.inf) -> int:
    number = env_number(name, default, minimum=minimum, maximum=maximum)
    if number != int(number):
        raise ImproperlyConfigured(f"{name}={os.environ[name]!r} is not a whole number")
    return int(number)


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name) or default
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of {', '.join(choices)}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_url(name: str, default: str, schemes: tuple[str, ...]) -> str:
    value = os.environ.get(name) or default
    parts = urlsplit(value)
    if parts.scheme not in schemes or not (parts.netloc or parts.path):
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a URL with scheme {' or '.join(schemes)}"
        )
    return value.rstrip("/")


def env_database(name: str, default: str) -> dict[str, Any]:
    value = os.environ.get(name) or default
    try:
        # Persistent connections; a connection that broke is replaced before the next task
        # (worker_signals) or request, so no health-check query is paid per frame.
        config = dj_database_url.parse(value, conn_max_age=600)
    except Exception as exc:  # dj-database-url raises several kinds; one message for all
        raise ImproperlyConfigured(f"{name}={value!r} is not a database URL: {exc}") from None
    if config["ENGINE"] not in (
        "django.db.backends.postgresql",
        "django.db.backends.sqlite3",
    ):
        raise ImproperlyConfigured(
            f"{name}={value!r}: only postgres:// and sqlite:// are supported"
        )
    if config["ENGINE"] == "django.db.backends.postgresql" and env_bool(
        "DATABASE_PREPARED_STATEMENTS", True
    ):
        # Statements run on a server-binding cursor (the store's INSERT) are prepared on
        # first use: parsed and planned once per connection. Django's own queries bind on
        # the client and are never prepared. Turn off behind PgBouncer < 1.21 in transaction
        # pooling mode.
        config.setdefault("OPTIONS", {})["prepare_threshold"] = 0
    return dict(config)


def env_origins(name: str) -> list[str]:
    origins = env_list(name, [])
    for origin in origins:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            raise ImproperlyConfigured(
                f"{name}: {origin!r} is not an origin such as https://detektr.example.com"
            )
    return origins


def env_proxy_ssl_header(name: str) -> tuple[str, str] | None:
    """The header a TLS-terminating proxy sets to https, e.g. X-Forwarded-Proto."""
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    if not value.replace("-", "").isascii() or not value.replace("-", "").isalnum():
        raise ImproperlyConfigured(f"{name}={value!r} is not a header name (X-Forwarded-Proto)")
    return ("HTTP_" + value.upper().replace("-", "_"), "https")


# Django's own deploy check (security.W009) asks for this much of a key.
MIN_SECRET_KEY_LENGTH = 50
MIN_API_TOKEN_LENGTH = 32
MAKE_A_SECRET = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"


def env_secret_key(name: str, key_file: Path) -> str:
    """SECRET_KEY, or else a random key kept in key_file (made on first use).

    No key is built into the code: a laptop gets a key of its own without setting anything,
    and a deployment that sets a weak one does not start.
    """
    key = os.environ.get(name) or local_secret_key(key_file)
    if len(key) < MIN_SECRET_KEY_LENGTH or len(set(key)) < 5 or key.startswith("django-"):
        raise ImproperlyConfigured(
            f"{name} must be at least {MIN_SECRET_KEY_LENGTH} random characters: {MAKE_A_SECRET}"
        )
    return key


def local_secret_key(path: Path) -> str:
    """One key per checkout, shared by all its processes (web, workers, capture).

    Written to a temporary file and linked into place, so processes starting at the same
    moment all read the one complete key that won.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        draft.write_text(get_random_secret_key())
        draft.chmod(0o600)
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another process was first: use its key
        finally:
            draft.unlink()
    return path.read_text().strip()


def env_tokens(name: str) -> list[str]:
    tokens = env_list(name, [])
    if any(len(token) < MIN_API_TOKEN_LENGTH for token in tokens):
        raise ImproperlyConfigured(
            f"{name}: every token must be at least {MIN_API_TOKEN_LENGTH} characters, "
            f"e.g. {MAKE_A_SECRET}"
        )
    return tokens


def env_cache(name: str) -> dict[str, Any]:
    """Unset: this process's memory. redis://…: shared by every web process (the API
    throttle then counts a client's calls across all of them)."""
    value = os.environ.get(name, "")
    if not value:
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env_url(name, value, ("redis", "rediss", "unix")),
    }


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_secret_key("SECRET_KEY", BASE_DIR / "var" / "secret_key")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
if not ALLOWED_HOSTS and not DEBUG:  # DEBUG: Django answers localhost then
    raise ImproperlyConfigured(
        f"ALLOWED_HOSTS={os.environ['ALLOWED_HOSTS']!r} names no host, so every request would be "
        "refused: name the hosts, or unset it for the laptop default"
    )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "frames",
    "workers",
    "health",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves /static/ (the admin's CSS) from this process, DEBUG or not.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: answers a locked-out login with its 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "detektr_project.urls"
WSGI_APPLICATION = "detektr_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Unset: a SQLite file next to manage.py, so a laptop needs no database server.
DATABASES = {"default": env_database("DATABASE_URL", f"sqlite:///{BASE_DIR / 'detektr.sqlite3'}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# WhiteNoise finds the files in the installed apps when it starts, so the admin has its CSS
# with DEBUG off and no collectstatic step (the few hundred admin files cost nothing to scan).
WHITENOISE_USE_FINDERS = True

# --- Web: deployment and security ------------------------------------------------------------
# Behind a TLS-terminating proxy, set all of these (docker/.env.example lists them;
# tests/test_settings.py runs `manage.py check --deploy` with that environment).
# The proxy's origin, for CSRF checks on the admin's forms: https://detektr.example.com
CSRF_TRUSTED_ORIGINS = env_origins("CSRF_TRUSTED_ORIGINS")
# The header the proxy sets to "https" (X-Forwarded-Proto); only if it always sets it.
SECURE_PROXY_SSL_HEADER = env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Health checks and Prometheus talk plain HTTP to the process, inside the deployment.
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^metrics$"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Anything under /frames answers JSON, also Django's own 400/403/404/500 (detektr_project.errors).
CSRF_FAILURE_VIEW = "detektr_project.errors.csrf_failure"
DEFAULT_EXCEPTION_REPORTER_FILTER = "detektr_project.errors.SettingsFilter"
CACHES = {"default": env_cache("CACHE_URL")}

# Failed admin logins (django-axes): LOGIN_FAILURE_LIMIT wrong passwords for one user name
# from one address lock that pair out for LOGIN_LOCKOUT_MINUTES (a 429 page). An operator
# unlocks early with `manage.py axes_reset`. Behind a proxy every client has the proxy's
# address, so the lockout is then per user name.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_number("LOGIN_LOCKOUT_MINUTES", 15, minimum=0.1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Not its banner on stderr at every start of every command (manage.py --help included).
AXES_VERBOSE = False
# Calls to the /frames API per client (token, user or address) per minute; 0: no limit.
# Over it: a JSON 429 with Retry-After. Counted in CACHES (per process unless CACHE_URL).
API_RATE_LIMIT = env_int("API_RATE_LIMIT", 600)
# /metrics shows counts and queue names, no frame data. true: it needs a bearer token from
# DETEKTR_API_TOKENS too (Prometheus: `authorization: {credentials: <token>}`).
METRICS_REQUIRE_TOKEN = env_bool("METRICS_REQUIRE_TOKEN", False)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Celery logs each task it receives and each one that succeeds at INFO: six lines a frame,
# 720 a second (some 15 GB a day) for 4 cameras at 30 fps, drowning the lines that matter.
# A frame's row and trace say what they said. Off unless LOG_TASKS=true; retries, failures
# and everything else are logged as before.
LOG_TASKS = env_bool("LOG_TASKS", False)
# Every line names its trace, span and frame (frame_tracking.logs), in every process:
# Celery workers log through this too (CELERY_WORKER_HIJACK_ROOT_LOGGER below).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "trace_context": {"()": "frame_tracking.logs.TraceContextFilter"},
        "task_succeeded": {"()": "frame_tracking.logs.DropMessages", "messages": [LOG_SUCCESS]},
        "without_traceback": {"()": "frame_tracking.logs.WithoutTraceback"},
    },
    "formatters": {"detektr": {"format": logs.FORMAT}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["trace_context"],
            "formatter": "detektr",
        }
    },
    "root": {"handlers": ["console"], "level": env_choice("LOG_LEVEL", "INFO", LOG_LEVELS)},
    "loggers": {
        # A request whose Host is not in ALLOWED_HOSTS (a scanner, a probe by IP): Django's
        # message names the host and the fix; its traceback, one per request, says nothing.
        "django.security.DisallowedHost": {"filters": ["without_traceback"]},
        **(
            {}
            if LOG_TASKS
            else {
                # Its only INFO line is "received"; Celery asks once, so no record is made.
                "celery.worker.strategy": {"level": "WARNING"},
                "celery.app.trace": {"filters": ["task_succeeded"]},
            }
        ),
    },
}

# --- detektr ---------------------------------------------------------------------------------
REDIS_URL = env_url("REDIS_URL", "redis://127.0.0.1:6379/0", ("redis", "rediss", "unix"))
# Where the admin's trace links point: JAEGER_UI_URL/trace/<trace_id>.
JAEGER_UI_URL = env_url("JAEGER_UI_URL", "http://localhost:16686", ("http", "https"))
# Jaeger's query API (frame_tracking.jaeger): the analyzer, the canary and doctor read traces
# there. Usually the same address as the UI.
JAEGER_QUERY_URL = env_url("JAEGER_QUERY_URL", JAEGER_UI_URL, ("http", "https"))
# How long the trace backend keeps traces, as configured there (Jaeger does not say through
# its API); `doctor` reports it. The compose stack gives Jaeger this same value.
# Only doctor reads it, and says when it is not a duration.
TRACE_RETENTION = env_str("TRACE_RETENTION", "").strip()
# The OTEL_* variables are read by frame_tracking.telemetry and the SDK in each process; a
# value they cannot honour stops start-up here rather than being ignored with a warning.
try:
    telemetry.check_environment()
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None
# Bearer tokens accepted by the /frames API, besides a logged-in session; 32+ characters.
DETEKTR_API_TOKENS = env_tokens("DETEKTR_API_TOKENS")
if METRICS_REQUIRE_TOKEN and not DETEKTR_API_TOKENS:
    raise ImproperlyConfigured(
        "METRICS_REQUIRE_TOKEN=true needs a token in DETEKTR_API_TOKENS to scrape /metrics with"
    )
# How long a frame's bytes live in Redis (the claim check); store deletes them earlier
# unless FRAME_KEEP_BYTES is true.
FRAME_TTL_SECONDS = env_int("FRAME_TTL_SECONDS", 60, minimum=1)
FRAME_KEEP_BYTES = env_bool("FRAME_KEEP_BYTES", False)
# How long frame rows are kept: `manage.py frames_partitions` (run daily) drops the days older
# than this (whole partitions on PostgreSQL) and creates FRAME_PARTITIONS_AHEAD_DAYS ahead.
FRAME_RETENTION_DAYS = env_int("FRAME_RETENTION_DAYS", 30, minimum=1, maximum=36500)
FRAME_PARTITIONS_AHEAD_DAYS = env_int("FRAME_PARTITIONS_AHEAD_DAYS", 7, minimum=1, maximum=366)
# Where a capture worker keeps the records of frames that Redis or the broker never took
# (an outage at exit); the next run for the camera sends them.
CAPTURE_JOURNAL_DIR = env_str("CAPTURE_JOURNAL_DIR", str(BASE_DIR / "var" / "capture"))
# Processors that the process stage runs, as dotted paths to BaseProcessor subclasses.
FRAME_PROCESSORS = env_list("FRAME_PROCESSORS", ["tasks.processors.FrameQualityProcessor"])
# Frames older than this when a stage picks them up are dropped as stale.
FRAME_MAX_AGE_SECONDS = env_number("FRAME_MAX_AGE_SECONDS", 10.0, minimum=0.001)
# Largest frame buffer accepted; anything bigger is dropped as invalid.
FRAME_MAX_BYTES = env_int("FRAME_MAX_BYTES", 16 * 1024 * 1024, minimum=1)

# --- Celery ----------------------------------------------------------------------------------
# Messages are small JSON dicts (frame id, Redis key, timestamps): the bytes stay in Redis.
# Redis (the default: REDIS_URL) or RabbitMQ (amqp://…); docs/brokers.md says which to choose.
CELERY_BROKER_URL = env_url(
    "CELERY_BROKER_URL", REDIS_URL, ("redis", "rediss", "unix", "amqp", "amqps")
)
BROKER_IS_AMQP = urlsplit(CELERY_BROKER_URL).scheme in ("amqp", "amqps")
CELERY_RESULT_BACKEND = None  # chains pass results to the next link; nobody calls .get()
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
# A frame is acknowledged only after its task finished, and a task whose worker died is
# requeued, so a killed worker loses no frame. Prefetch 1 keeps a dying child from taking
# a batch of frames down with it.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# --- Broker-specific (RabbitMQ or Redis) ---
# Seconds until the broker hands a dead worker's unacknowledged frames to another worker
# (FRAME_REAP_SECONDS waits longer).
BROKER_REDELIVERY_SECONDS: float
if BROKER_IS_AMQP:
    # RabbitMQ: quorum queues (replicated, durable) for the stage queues. RabbitMQ requeues a
    # consumer's unacknowledged messages the moment its connection closes, so a killed main
    # process loses nothing (Redis's BRPOP window, celery #7950, does not exist here).
    # Publisher confirms: apply_async returns once RabbitMQ has the message, or raises.
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {"confirm_publish": True}
    # Quorum queues do not support global QoS: Celery turns it off when it detects them
    # (the Celery docs' "Using Quorum Queues"). Countdowns (the stage tasks' retry backoff)
    # then need native delayed delivery, which routes through topic exchanges; with a direct
    # exchange a retried task would block its worker until its countdown ends.
    CELERY_TASK_DEFAULT_QUEUE_TYPE = "quorum"
    CELERY_WORKER_DETECT_QUORUM_QUEUES = True
    CELERY_BROKER_NATIVE_DELAYED_DELIVERY_QUEUE_TYPE = "quorum"
    BROKER_REDELIVERY_SECONDS = 0
else:
    # Redis restores unacknowledged messages after the visibility timeout (default one hour).
    # Stage tasks take milliseconds; 30 s brings a dead worker's frames back in seconds while
    # staying far above the longest task (its hard time limit below).
    # The sweep that restores them runs every unacked_restore_interval × _throttle seconds
    # (100 s by default): every 5 s instead, so redelivery takes seconds, not minutes.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 30, minimum=5),
        "unacked_restore_interval": 5,
        "unacked_restore_throttle": 1,
    }
    BROKER_REDELIVERY_SECONDS = CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
# --- end broker-specific ---
CELERY_TASK_TIME_LIMIT = 20
CELERY_TASK_SOFT_TIME_LIMIT = 15
# One queue per stage, so `celery -A detektr worker -Q process` scales one stage.
CELERY_TASK_DEFAULT_QUEUE = "buffer"
CELERY_TASK_ROUTES = {
    "detektr.buffer": {"queue": "buffer"},
    "detektr.process": {"queue": "process"},
    "detektr.store": {"queue": "store"},
    "detektr.record_batch": {"queue": "store"},
}
# A worker started without -Q consumes all three. On RabbitMQ each is a quorum queue behind a
# topic exchange of its name (native delayed delivery binds to it).
CELERY_TASK_QUEUES = [
    Queue(
        name,
        Exchange(name, type="topic"),
        routing_key=name,
        queue_arguments={"x-queue-type": "quorum"},
    )
    if BROKER_IS_AMQP
    else Queue(name)
    for name in ("buffer", "process", "store")
]
# Without it Celery's Django fixup closes the database connection around every task and
# store reconnects to PostgreSQL for every frame.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000, minimum=0)
# Prometheus /metrics of a worker on this port (0: none). A prefork worker also needs
# PROMETHEUS_MULTIPROC_DIR, which scripts/worker.sh sets; such a worker without it refuses to
# start (worker_signals.check_worker_metrics), not every process that shares the environment.
WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 0, maximum=65535)
# Workers log through LOGGING above, so their lines carry trace_id, span_id and frame_id too.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Task events (Flower's live view) cost the worker's main process a PUBLISH per task state,
# about a third of its CPU (docs/performance.md): off unless someone watches. Flower turns
# them on at run time (its --enable_events, on by default); by hand:
# `celery -A detektr control enable_events` (and `disable_events`).
CELERY_WORKER_SEND_TASK_EVENTS = env_bool("CELERY_WORKER_SEND_TASK_EVENTS", False)
# A task's spans are written to a span spool in this directory before the broker hears the
# task is done, and a frame's root span as soon as the capture has handed the frame over, so
# a worker or capture killed after that takes none along; a thread ships them to the
# collector, and the next process to start ships what a killed one left
# (frame_tracking/span_spool.py). Empty: spans leave on the batch processor's schedule only,
# and a killed process loses what it buffered.
TRACE_SPOOL_DIR = env_str("TRACE_SPOOL_DIR", str(BASE_DIR / "var" / "spans"))
CELERY_TASK_SEND_SENT_EVENT = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- In-flight bound (backpressure) ----------------------------------------------------------
# Frames between capture and their final status, per camera and over all cameras. Capture
# sheds frames at the source (reason "backpressure") once either reaches the high-water mark
# of its limit and resumes below the low-water mark. The limit follows a latency budget: each
# second it is set from the rate at which the pipeline finishes frames (Little's law: frames
# in flight = rate x time in flight), shared fairly between the cameras (workers/ledger.py).
# FRAME_INFLIGHT_PER_CAMERA and FRAME_INFLIGHT_TOTAL are the hard ceilings; a budget of 0
# turns adaptation off and makes them the limits (the fixed bound of earlier releases).
FRAME_LATENCY_BUDGET_MS = env_number("FRAME_LATENCY_BUDGET_MS", 100.0, minimum=0)
FRAME_INFLIGHT_PER_CAMERA = env_int("FRAME_INFLIGHT_PER_CAMERA", 90, minimum=1)
FRAME_INFLIGHT_TOTAL = env_int("FRAME_INFLIGHT_TOTAL", 360, minimum=1)
FRAME_INFLIGHT_HIGH_WATER = env_number("FRAME_INFLIGHT_HIGH_WATER", 0.8, minimum=0.01)
FRAME_INFLIGHT_LOW_WATER = env_number("FRAME_INFLIGHT_LOW_WATER", 0.6, minimum=0.0)
# A frame still in flight this long after capture had its task lost (say, a worker's main
# process was killed holding it): its capture worker records it as dropped, reason
# "expired". Longer than the broker's redelivery (Redis: visibility timeout + restore sweep) plus
# the stale age, so a redelivered frame gets its chance first; and, with either broker, longer
# than the 30 s of outage (Redis, PostgreSQL) that stage retries wait out without a frame
# being reaped meanwhile.
FRAME_REAP_SECONDS = env_number(
    "FRAME_REAP_SECONDS",
    max(BROKER_REDELIVERY_SECONDS, 30) + FRAME_MAX_AGE_SECONDS + 20,
    minimum=1,
)
if FRAME_INFLIGHT_LOW_WATER >= FRAME_INFLIGHT_HIGH_WATER or FRAME_INFLIGHT_HIGH_WATER > 1:
    raise ImproperlyConfigured(
        "FRAME_INFLIGHT_LOW_WATER must be below FRAME_INFLIGHT_HIGH_WATER, which must be at most 1"
    )
