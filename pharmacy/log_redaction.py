"""Logs never hold a credential: the prescriber link's token is part of its path
(/refills/link/<token>/), so paths are logged with the token replaced — in the web server's access
log (RedactingLogger, used by `serve`) and in Django's own request warnings and errors
(RedactSecretsFilter on the console handler). Query strings and referrers are already left out of
the access log format (serve.ACCESS_LOG_FORMAT)."""
from __future__ import annotations

import logging
import re

# Paths whose last segment is a bearer credential (refills/urls.py "prescriber-link").
_SECRET_PATHS = re.compile(r"(/refills/link/)(?!done/)[^/?\s\"']+")


def redact_path(text):
    return _SECRET_PATHS.sub(r"\1[redacted]", text) if isinstance(text, str) and text else text


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_path(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_path(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: redact_path(value) for key, value in record.args.items()}
        return True


class OneLineRefusalsFilter(logging.Filter):
    """A refused request (any 4xx: 403, 404, 410 …) is logged as one line, not with the traceback of
    the PermissionDenied / Http404 that produced it; server errors (5xx) keep their traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True


try:
    from gunicorn.glogging import Logger as _GunicornLogger
except ImportError:  # gunicorn is only needed by `serve`
    _GunicornLogger = None

if _GunicornLogger is not None:
    class RedactingLogger(_GunicornLogger):
        def atoms(self, resp, req, environ, request_time):
            atoms = super().atoms(resp, req, environ, request_time)
            for key in ("U", "r"):
                atoms[key] = redact_path(atoms.get(key))
            return atoms
