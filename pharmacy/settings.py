"""Settings for Rx Workflow Hub, read from the environment with safe defaults.

Embedded defaults (SQLite, django-q2 ORM broker, console e-mail) run everything on a laptop;
production sets DATABASE_URL (PostgreSQL), DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS and, when
workers run on several machines, REDIS_URL.
"""
from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def env_bool(name: str, default: bool) -> bool:
    """Strict: 1/true/yes/on or 0/false/no/off (any case); unset or empty keeps the default (so
    ``DJANGO_HTTPS=`` in a deployment file leaves HTTPS on); anything else refuses to start."""
    value = (os.environ.get(name) or "").strip().lower()
    if not value:
        return default
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name}={os.environ[name]!r}: use 1/true/yes/on or 0/false/no/off")


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def database_from_url(url: str) -> dict:
    """Turn ``postgres://user:pass@host:5432/name`` or ``sqlite:///path`` into a DATABASES entry."""
    parsed = urlparse(url)
    scheme = parsed.scheme.split("+")[0]
    if scheme == "sqlite":
        path = unquote(parsed.path)
        # sqlite:///relative.db → project folder; sqlite:////abs/path.db → absolute; sqlite:///:memory:
        name = path[1:] if path.startswith("/") else path
        if not name:
            name = "db.sqlite3"
        if name != ":memory:" and not Path(name).is_absolute():
            name = str(BASE_DIR / name)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": name,
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    if scheme in {"postgres", "postgresql", "pgsql"}:
        options = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parsed.path.lstrip("/")),
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            "CONN_MAX_AGE": int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
            "OPTIONS": options,
        }
    raise ImproperlyConfigured(f"DATABASE_URL: unsupported scheme {parsed.scheme!r}")


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and os.environ.get("DJANGO_ENV") == "production":
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set in production")
    # Development/demo only: a fixed key is fine on a laptop, never in production.
    SECRET_KEY = "dev-insecure-" + "rx-workflow-hub-local-only-key-change-me-0123456789"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "pharmacy.admin_site.RxAdminConfig",  # the admin role administers (pharmacy/admin_site.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "django_q",
    "axes",
    "pharmacy",
    "refills",
    "priorauth",
    "reconciliation",
    "audit",
]

MIDDLEWARE = [
    # Outermost: a database outage answers 503 (API JSON / HL7 AE / styled page), never a 500.
    "pharmacy.db_outage.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files answer here, before the two below
    # Content-Security-Policy on every page: scripts and styles from our own static files only.
    "csp.middleware.CSPMiddleware",
    # Cache-Control: no-store on every page and API answer (patient data must not stay in caches).
    "pharmacy.middleware.NoStoreMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "axes.middleware.AxesMiddleware",
    # Writes the PHI access log (one INSERT per request) from the views' mark_phi_access calls.
    "audit.middleware.PhiAccessMiddleware",
]

# django-csp 4: no inline script, style or event handler anywhere (templates keep JS/CSS in static/);
# HIPAA 45 CFR 164.312(c)(1) integrity against injected script. data: images for the API docs' icons.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

ROOT_URLCONF = "pharmacy.urls"
WSGI_APPLICATION = "pharmacy.wsgi.application"
ASGI_APPLICATION = "pharmacy.asgi.application"

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
                "pharmacy.context_processors.roles",
            ],
        },
    },
]

DATABASES = {"default": database_from_url(os.environ.get("DATABASE_URL", "sqlite:///db.sqlite3"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# Login throttling: lock an account+IP after repeated failures (django-axes).
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLED = env_bool("AXES_ENABLED", True)

# Sessions end after inactivity (default 15 minutes; HIPAA 45 CFR 164.312(a)(2)(iii) automatic logoff).
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_IDLE_SECONDS", str(15 * 60)))
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("DJANGO_TIME_ZONE", "America/New_York")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env_bool("DJANGO_MANIFEST_STATIC", not DEBUG and os.environ.get("DJANGO_ENV") == "production")
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "var" / "media"))
WHITENOISE_USE_FINDERS = True

PRODUCTION = os.environ.get("DJANGO_ENV") == "production"
# Console backends print to the server log: in development they say that a message went out and to
# whom (masked), never its text (prescriber links are credentials; patient messages are PHI).
# Production refuses them (45 CFR 164.312(b)): configure SMTP / an SMS gateway instead.
CONSOLE_EMAIL_BACKENDS = frozenset({"django.core.mail.backends.console.EmailBackend",
                                    "pharmacy.messaging.console.MaskedConsoleEmailBackend"})
CONSOLE_SMS_BACKENDS = frozenset({"pharmacy.messaging.transports.ConsoleSmsBackend"})
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND") or (
    "django.core.mail.backends.smtp.EmailBackend" if PRODUCTION
    else "pharmacy.messaging.console.MaskedConsoleEmailBackend"
)
if PRODUCTION and EMAIL_BACKEND in CONSOLE_EMAIL_BACKENDS:
    raise ImproperlyConfigured(f"EMAIL_BACKEND={EMAIL_BACKEND}: console e-mail is refused in production")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Rx Workflow Hub <no-reply@localhost>")

# Production hardening: on whenever DEBUG is off, unless DJANGO_HTTPS=0 says the server is
# reached over plain HTTP on a laptop (make demo). `manage.py check --deploy` passes without warnings.
# Under pytest (which sets PYTEST_VERSION) the live test server speaks plain HTTP.
HTTPS = env_bool("DJANGO_HTTPS", PRODUCTION or (not DEBUG and "PYTEST_VERSION" not in os.environ))
if HTTPS:
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", str(60 * 60 * 24 * 365)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["pharmacy.api.permissions.RolePermission"],
    # JSON read capped, depth-bounded, lone surrogates refused; a refused body is stored (RefusedPayload).
    "DEFAULT_PARSER_CLASSES": [
        "pharmacy.api.parsers.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "pharmacy.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "pharmacy.api.exceptions.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"anon": "60/minute"},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Rx Workflow Hub API",
    "DESCRIPTION": "Refills and renewals, prior authorization and medication reconciliation.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Grouped by app (refills, prior authorization, reconciliation, audit, core), a description each;
    # every operation documents 400/401/403/404/405/409/413/415/429/503 with the error shape.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "pharmacy.api.schema.group_by_app",
                             "pharmacy.api.schema_errors.add_error_responses"],
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",  # served from our own static files, no CDN
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a `source` field with different choice sets; name each enum.
    "ENUM_NAME_OVERRIDES": {
        "RecordSourceEnum": "pharmacy.choices.RecordSource",
        "RefillRequestSourceEnum": "refills.choices.RequestSource",
        "RefillStatusEnum": "refills.choices.RefillStatus",
        "RefillKindEnum": "refills.choices.RequestKind",
        "PACaseStatusEnum": "priorauth.choices.CaseStatus",
        "InboundMessageStatusEnum": "reconciliation.choices.InboundStatus",
        "InboundChannelEnum": "reconciliation.choices.Channel",
        "IntakeChannelEnum": "refills.choices.IntakeChannel",
        "PayloadFormatEnum": "reconciliation.choices.PayloadFormat",
        "ReconciliationTaskStatusEnum": "reconciliation.choices.TaskStatus",
        "DiscrepancyStatusEnum": "reconciliation.choices.DiscrepancyStatus",
    },
}

# Task broker: the ORM (the database itself) by default, enough for one machine and `make demo`;
# REDIS_URL (redis://host:6379/0) selects django-q2's Redis broker, shared by any number of
# `manage.py qcluster` processes on any number of machines (README, Production: scale-out).
REDIS_URL = os.environ.get("REDIS_URL", "")
Q_WORKERS = int(os.environ.get("Q_WORKERS", "2"))
Q_CLUSTER = {
    "name": "rxhub",
    "workers": Q_WORKERS,
    "timeout": 120,
    "retry": 180,
    "max_attempts": 1,  # retries are ours (outbox backoff), not the broker's
    # Tasks a cluster takes off the broker ahead of its workers. With several clusters on one Redis
    # a cluster holding 50 would starve the others: there it holds one per worker unless told.
    "queue_limit": int(os.environ.get("Q_QUEUE_LIMIT") or (Q_WORKERS if REDIS_URL else 50)),
    "catch_up": False,
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
# Tests and `manage.py` one-offs can run tasks inline.
if env_bool("Q_SYNC", False):
    Q_CLUSTER["sync"] = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Prescriber-link tokens are credentials: paths are redacted before anything is written.
    # Refused requests (4xx) are one line each, without the exception's traceback.
    "filters": {"redact_secrets": {"()": "pharmacy.log_redaction.RedactSecretsFilter"},
                "one_line_refusals": {"()": "pharmacy.log_redaction.OneLineRefusalsFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain",
                             "filters": ["redact_secrets", "one_line_refusals"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

AUDIT_KEY = os.environ.get("RXHUB_AUDIT_KEY", "")
if not AUDIT_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("RXHUB_AUDIT_KEY must be set in production (the audit chain's HMAC key)")
    AUDIT_KEY = "dev-audit-key-rx-workflow-hub-local-only-change-me"  # development and tests only
elif PRODUCTION and len(AUDIT_KEY) < 32:
    raise ImproperlyConfigured("RXHUB_AUDIT_KEY must be at least 32 characters")
if PRODUCTION and os.environ.get("RXHUB_SMS_BACKEND", "") in CONSOLE_SMS_BACKENDS:
    raise ImproperlyConfigured("RXHUB_SMS_BACKEND: the console SMS backend is refused in production")

# --- Rx Workflow Hub policy defaults (each one configurable) ---------------------------------
def env_json_object(name: str) -> dict:
    """A JSON object from the environment ({} when unset or not an object)."""
    try:
        value = json.loads(os.environ.get(name, "") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


_PA_DRAFTER_URL = os.environ.get("RXHUB_PA_DRAFTER_URL", "")

# One configuration style (issue 12): every setting is read from the environment here, once; each
# app reads settings.RXHUB through its small typed accessor (refills/conf.py, priorauth/conf.py,
# reconciliation/conf.py).
RXHUB = {
    # Non-controlled prescriptions: no federal expiry; many states use one year (STANDARDS.md).
    "NON_CONTROLLED_EXPIRY_DAYS": int(os.environ.get("RXHUB_NON_CONTROLLED_EXPIRY_DAYS", "365")),
    # Refill too soon: share of the last fill's days supply that must be used (default 75 %).
    "REFILL_TOO_SOON_SHARE": os.environ.get("RXHUB_REFILL_TOO_SOON_SHARE", "0.75"),
    "REFILL_LOOKAHEAD_DAYS": int(os.environ.get("RXHUB_REFILL_LOOKAHEAD_DAYS", "7")),
    "PRESCRIBER_LINK_HOURS": int(os.environ.get("RXHUB_PRESCRIBER_LINK_HOURS", "72")),
    "PRESCRIBER_REMINDER_HOURS": int(os.environ.get("RXHUB_PRESCRIBER_REMINDER_HOURS", "24")),
    # A request whose prescriber will send a new prescription (EPCS) returns to the queue, with a
    # reminder to the prescriber, after this many days without it (policy default).
    "NEW_PRESCRIPTION_WAIT_DAYS": int(os.environ.get("RXHUB_NEW_PRESCRIPTION_WAIT_DAYS", "3")),
    # Renewals: refills × days supply may not exceed this (docs/standards.md; default 365, configurable).
    "MAX_AUTHORIZATION_DAYS": int(os.environ.get("RXHUB_MAX_AUTHORIZATION_DAYS", "365")),
    "OUTBOX_DIR": os.environ.get("RXHUB_OUTBOX_DIR", str(BASE_DIR / "var" / "outbox")),
    # The address people open (links in e-mails and SMS); `make demo` derives it from HOST and PORT,
    # production must set it (check --deploy fails when unset or loopback: pharmacy/checks.py).
    "PUBLIC_BASE_URL": os.environ.get("RXHUB_PUBLIC_BASE_URL", "http://127.0.0.1:8000"),
    "PUBLIC_BASE_URL_SET": bool(os.environ.get("RXHUB_PUBLIC_BASE_URL")),
    "DEFAULT_FACILITY_CODE": os.environ.get("RXHUB_DEFAULT_FACILITY", "MAIN"),
    "MAX_INBOUND_BYTES": int(os.environ.get("RXHUB_MAX_INBOUND_BYTES", str(5 * 1024 * 1024))),
    # A member's copy of the NCPDP SCRIPT 2017071 XSDs (never in the repository); PharmacyConfig.ready()
    # hands it to the pure codec (pharmacy.interop.ncpdp.schema.configure). "" = no XSD validation.
    "NCPDP_XSD_DIR": os.environ.get("NCPDP_XSD_DIR", ""),
    "OUTBOX_MAX_ATTEMPTS": int(os.environ.get("RXHUB_OUTBOX_MAX_ATTEMPTS", "8")),
    # A delivery claims its message for this long (it sends with no transaction open); a worker that
    # dies mid-send leaves the claim to expire, then the message is sent again with the same ID.
    "OUTBOX_CLAIM_SECONDS": int(os.environ.get("RXHUB_OUTBOX_CLAIM_SECONDS", "600")),
    "HTTP_TIMEOUT_SECONDS": int(os.environ.get("RXHUB_HTTP_TIMEOUT_SECONDS", "15")),
    # manage.py serve: delay before restarting a dead child, doubling up to the cap (seconds).
    "SERVE_BACKOFF_FIRST": float(os.environ.get("RXHUB_SERVE_BACKOFF_FIRST", "1")),
    "SERVE_BACKOFF_MAX": float(os.environ.get("RXHUB_SERVE_BACKOFF_MAX", "60")),
    # HTTP SMS gateway (pharmacy.messaging.transports.HttpSmsBackend): URL and bearer token.
    "SMS_URL": os.environ.get("RXHUB_SMS_URL", ""),
    "SMS_TOKEN": os.environ.get("RXHUB_SMS_TOKEN", ""),
    # Secrets NAMED by configuration (an outbox message's credentials_env, a payer's token_env, the
    # drafter's TOKEN_ENV) are read from the environment when used, in one place:
    # pharmacy/secrets.py::secret_named (so a rotated token needs no restart and never enters the DB).
    # Prior authorization (priorauth/conf.py): payer endpoints keyed by Payer.endpoint_key (tokens stay
    # in the variables they name), the renewal window, the optional language-model drafter.
    "PAYERS": env_json_object("RXHUB_PAYERS"),
    "PA_RENEWAL_WINDOW_DAYS": int(os.environ.get("RXHUB_PA_RENEWAL_WINDOW_DAYS", "30")),
    "PA_DRAFTER": {"ENABLED": bool(_PA_DRAFTER_URL), "URL": _PA_DRAFTER_URL,
                   "MODEL": os.environ.get("RXHUB_PA_DRAFTER_MODEL", ""),
                   "TOKEN_ENV": os.environ.get("RXHUB_PA_DRAFTER_TOKEN_ENV", "")},
    "SMS_BACKEND": os.environ.get("RXHUB_SMS_BACKEND") or (
        "pharmacy.messaging.transports.HttpSmsBackend" if PRODUCTION
        else "pharmacy.messaging.transports.ConsoleSmsBackend"),
    # Audit chain key (HMAC-SHA256) lives outside the database, so whoever can write the tables
    # cannot forge a chain that verifies (45 CFR 164.312(c)(2)). See audit/events.py.
    "AUDIT_KEY": AUDIT_KEY,
    # Append-only anchor file: (sequence, hash) every AUDIT_ANCHOR_EVERY events and daily; keep it
    # off the database host. `verify_audit --anchor FILE` detects a truncated chain with it.
    "AUDIT_ANCHOR_FILE": os.environ.get("RXHUB_AUDIT_ANCHOR_FILE", str(BASE_DIR / "var" / "audit-anchor.log")),
    "AUDIT_ANCHOR_EVERY": int(os.environ.get("RXHUB_AUDIT_ANCHOR_EVERY", "1000")),
    # History and PHI access log retention before `manage.py purge_history` may remove rows
    # (default six years, as HIPAA documentation retention, 45 CFR 164.316(b)(2)(i)).
    "HISTORY_RETENTION_DAYS": int(os.environ.get("RXHUB_HISTORY_RETENTION_DAYS", str(6 * 365))),
}

# History: change reasons can be long; reverting from admin would bypass services.
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True
SIMPLE_HISTORY_REVERT_DISABLED = True
SIMPLE_HISTORY_ENABLED = True
AXES_VERBOSE = False
