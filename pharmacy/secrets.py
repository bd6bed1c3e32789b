"""The one place a secret NAMED by configuration is read (settings-adjacent; see the RXHUB comment
in pharmacy/settings.py). An outbox message's ``credentials_env``, a payer's ``token_env`` and the
PA drafter's ``TOKEN_ENV`` hold the NAME of an environment variable, never the secret: it is read
here when used, so it stays out of the database and its history and a rotated token needs no
restart."""
from __future__ import annotations

import os


def secret_named(name: str) -> str:
    """The value of the environment variable ``name`` ("" when ``name`` is empty or unset)."""
    return os.environ.get(name, "") if name else ""
