"""Flower's defaults for detektr, read by `celery -A detektr flower` started in this directory.

Flower's UI can revoke and rate-limit tasks and shows every task's arguments, and a bare
Flower listens on every interface with no login. Here it listens on 127.0.0.1 unless
FLOWER_ADDRESS says otherwise, and it always asks for a login: FLOWER_BASIC_AUTH=user:password
(several separated by commas), or, when that is not set, the user `operator` with a password
made for this run and printed once. Options on the command line still win (docker/compose.yaml
passes --address and --basic-auth).
"""

import os
import secrets
import sys

address = os.environ.get("FLOWER_ADDRESS", "127.0.0.1")

# A login chosen elsewhere: Flower's OAuth (FLOWER_AUTH) or command-line options, which win.
_chosen = os.environ.get("FLOWER_AUTH") or any(
    arg.startswith(("--basic-auth", "--auth")) for arg in sys.argv
)
if os.environ.get("FLOWER_BASIC_AUTH"):
    basic_auth = os.environ["FLOWER_BASIC_AUTH"].split(",")
elif not _chosen:
    _password = secrets.token_urlsafe(16)
    basic_auth = [f"operator:{_password}"]
    print(
        f"flower: log in as operator, password {_password} (made for this run; set "
        "FLOWER_BASIC_AUTH=user:password to choose one)",
        file=sys.stderr,
        flush=True,
    )
