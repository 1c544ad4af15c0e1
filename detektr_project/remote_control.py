"""The `conf` and `report` inspect commands, without the passwords Celery's leave in.

Flower's worker "Config" tab and `celery -A detektr inspect conf` show a worker's settings:
every Django setting, not only the CELERY_* ones. Celery censors them with
`celery.app.utils.filter_hidden_settings`, which masks keys like *PASS*/*SECRET* and cleans
the URLs of keys named `broker_url` or `*backend*` only: CELERY_BROKER_URL, REDIS_URL and
CACHES["default"]["LOCATION"] went out with their passwords, and so would any URL in a list.
Registering a command under a built-in's name replaces it (Celery's "Writing your own remote
control commands"); these keep the built-ins' names, arguments and reply shapes, so Flower
and the CLI read them as before. Django's error reports have their own filter
(errors.SettingsFilter); nothing here touches it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from celery.app.utils import HIDDEN_SETTINGS, bugreport  # type: ignore[attr-defined]
from celery.utils.serialization import jsonify, strtobool
from celery.utils.text import pretty
from celery.worker.control import inspect_command
from kombu.utils.encoding import safe_repr

MASK = "*" * 8
# Celery's names of secrets (API, TOKEN, KEY, SECRET, PASS, DATABASE, …) and a few more. A
# value under such a key is masked whole, whatever it holds, at any depth.
SECRET_KEYS = re.compile(f"{HIDDEN_SETTINGS.pattern}|CREDENTIAL|PWD|PRIVATE", re.IGNORECASE)
# The user-info part of a URL anywhere in a string: scheme://user:password@ (the password up
# to the authority's last "@", as urllib and redis-py read it).
URL_PASSWORD = re.compile(r"\b([a-z][a-z0-9+.-]*://[^\s/?#:@]*):[^\s/?#]*@", re.IGNORECASE)
# A query parameter of a URL: redis-py and libpq take ?password=… too.
URL_PARAMETER = re.compile(r"([?&])([^=&#\s]+)=([^&#\s]*)")


def without_passwords(text: str) -> str:
    """`redis://:s3cret@host:6379/0` as `redis://:********@host:6379/0`, and
    `unix:///run/redis.sock?password=s3cret` as `unix:///run/redis.sock?password=********`,
    wherever in text."""
    text = URL_PASSWORD.sub(rf"\1:{MASK}@", text)
    return URL_PARAMETER.sub(_masked_parameter, text)


def _masked_parameter(match: re.Match[str]) -> str:
    separator, name, value = match.groups()
    return f"{separator}{name}={MASK if SECRET_KEYS.search(name) else value}"


def censored(value: Any, key: object = None) -> Any:
    """value with every secret-looking key's value masked and every URL's password hidden,
    through dicts, lists and tuples at any depth."""
    if isinstance(key, str) and SECRET_KEYS.search(key):
        return MASK
    if isinstance(value, Mapping):
        return {k: censored(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [censored(item) for item in value]
    if isinstance(value, tuple):
        return tuple(censored(item) for item in value)
    if isinstance(value, str):
        return without_passwords(str(value))  # str(): lazy strings (Django) too
    return value


def _wanted_config_key(key: object) -> bool:
    return isinstance(key, str) and not key.startswith("__")


@inspect_command(
    alias="dump_conf",
    signature="[include_defaults=False]",
    args=[("with_defaults", strtobool)],
)
def conf(state: Any, with_defaults: bool = False, **kwargs: Any) -> dict[str, Any]:
    """List configuration."""
    table = state.app.conf.table(with_defaults=with_defaults, censored=False)
    # Objects that are not JSON (a Queue, a class) go out as their repr: cleaned too.
    reply: dict[str, Any] = jsonify(
        censored(table),
        keyfilter=_wanted_config_key,
        unknown_type_filter=lambda obj: without_passwords(safe_repr(obj)),
    )
    return reply


@inspect_command()
def report(state: Any) -> dict[str, str]:
    """Information about Celery installation for bug reports."""
    app = state.app
    # Celery's report shows the settings as humanize() writes them, censored its way: ours
    # instead. The whole text is cleaned of URL passwords as well, in case that ever fails.
    head, found, tail = bugreport(app).rpartition(app.conf.humanize())
    if found:
        found = "\n".join(
            f"{key}: {pretty(value, width=50)}"
            for key, value in censored(app.conf.table(censored=False)).items()
        )
    return {"ok": without_passwords(head + found + tail)}  # celery.worker.control.ok()
