"""Django settings for jobline as a service (``jobline up`` and the role commands).

Everything comes from the environment or ``.env``; see docs/reference/settings.md.
"""

from __future__ import annotations

import secrets
import warnings
from pathlib import Path

from jobline.service import env
from jobline.service.database import database, sqlite_url

env.load()

DATA_DIR = Path(env.text("JOBLINE_DATA_DIR", "jobline-data"))
DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)  # the secret key and database live here


def _secret_key() -> str:
    """``SECRET_KEY``, else one generated once and kept in the data folder."""
    if key := env.text("SECRET_KEY"):
        return key
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env.flag("DEBUG", False)
ALLOWED_HOSTS = env.text("ALLOWED_HOSTS", "localhost 127.0.0.1 [::1]").split()
CSRF_TRUSTED_ORIGINS = env.text("CSRF_TRUSTED_ORIGINS").split()

_default_db = sqlite_url(DATA_DIR / "jobline.sqlite3")
DATABASES = {
    "default": database(
        env.text("DATABASE_URL") or _default_db,
        ssl_required=env.flag("POSTGRES_SSL_REQUIRED", False),
        sqlite_busy_timeout=env.number("JOBLINE_SQLITE_BUSY_TIMEOUT", 10.0),
    )
}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "jobline",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "jobline.input_guard.InputGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "jobline.service.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
ASGI_APPLICATION = "jobline.service.asgi.application"
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True  # serve the admin's files straight from the installed apps
# WhiteNoise streams files synchronously; Django warns under ASGI but serves them correctly.
warnings.filterwarnings("ignore", "StreamingHttpResponse must consume synchronous iterators")
USE_TZ = True
TIME_ZONE = env.text("TIME_ZONE", "UTC")
LANGUAGE_CODE = "en-us"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

JOBLINE_WORKER_ENABLED = env.flag("WORKER_ENABLED", True)
JOBLINE_WORKER_CONCURRENCY = int(env.number("WORKER_CONCURRENCY", 100, int))
JOBLINE_LEASE_SECONDS = env.number("JOBLINE_LEASE_SECONDS", 30.0)
JOBLINE_HEARTBEAT_SECONDS = env.number("JOBLINE_HEARTBEAT_SECONDS", 5.0)
JOBLINE_SHUTDOWN_GRACE_SECONDS = env.number("JOBLINE_SHUTDOWN_GRACE_SECONDS", 30.0)
JOBLINE_PROGRESS_SECONDS = env.number("JOBLINE_PROGRESS_SECONDS", 0.5)
JOBLINE_JOB_LOG_MAX_LINES = int(env.number("JOBLINE_JOB_LOG_MAX_LINES", 1000, int))
JOBLINE_JOB_LOG_MAX_BYTES = int(env.number("JOBLINE_JOB_LOG_MAX_BYTES", 262_144, int))
JOBLINE_CAPTURE_PRINTS = env.flag("JOBLINE_CAPTURE_PRINTS", False)
JOBLINE_SCHEDULER_ENABLED = env.flag("SCHEDULER_ENABLED", True)
JOBLINE_SCHEDULE_HISTORY = int(env.number("JOBLINE_SCHEDULE_HISTORY", 100, int))
JOBLINE_RETENTION_SUCCEEDED = env.number("JOBLINE_RETENTION_SUCCEEDED", 7.0)
JOBLINE_RETENTION_FAILED = env.number("JOBLINE_RETENTION_FAILED", 30.0)
JOBLINE_RETENTION_CANCELLED = env.number("JOBLINE_RETENTION_CANCELLED", 30.0)
JOBLINE_RETENTION_SCHEDULE_RUNS = env.number("JOBLINE_RETENTION_SCHEDULE_RUNS", 30.0)
JOBLINE_PRUNE_INTERVAL = env.number("JOBLINE_PRUNE_INTERVAL", 600.0)
JOBLINE_PRUNE_BATCH = int(env.number("JOBLINE_PRUNE_BATCH", 2000, int))

# The REST API (docs/reference/rest-api.md).
JOBLINE_API_PUBLIC_READ = env.flag("JOBLINE_API_PUBLIC_READ", False)
JOBLINE_API_MAX_BODY_BYTES = int(env.number("JOBLINE_API_MAX_BODY_BYTES", 1_048_576, int))
JOBLINE_API_MAX_INPUTS_BYTES = int(env.number("JOBLINE_API_MAX_INPUTS_BYTES", 262_144, int))

# Sign-in throttling (docs/reference/settings.md): per user name and per address.
JOBLINE_LOGIN_FAILURE_LIMIT = int(env.number("JOBLINE_LOGIN_FAILURE_LIMIT", 5, int))
JOBLINE_LOGIN_LOCKOUT_SECONDS = int(env.number("JOBLINE_LOGIN_LOCKOUT_SECONDS", 300, int))

# The http and kafka job types (docs/how-to/http-and-kafka.md).
JOBLINE_HTTP_ALLOWED_NETWORKS = env.text("JOBLINE_HTTP_ALLOWED_NETWORKS")
JOBLINE_HTTP_SIGNING_SECRETS = env.text("JOBLINE_HTTP_SIGNING_SECRETS")
JOBLINE_KAFKA_ENABLED = env.flag("KAFKA_ENABLED", False)
JOBLINE_KAFKA_BOOTSTRAP_SERVERS = env.text("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
JOBLINE_KAFKA_TOPIC = env.text("KAFKA_TOPIC", "jobs")
JOBLINE_KAFKA_IDEMPOTENT = env.flag("KAFKA_IDEMPOTENT", True)
JOBLINE_KAFKA_SECURITY_PROTOCOL = env.text("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
JOBLINE_KAFKA_SASL_MECHANISM = env.text("KAFKA_SASL_MECHANISM", "PLAIN")
JOBLINE_KAFKA_SASL_USERNAME = env.text("KAFKA_SASL_USERNAME")
JOBLINE_KAFKA_SASL_PASSWORD = env.text("KAFKA_SASL_PASSWORD")
JOBLINE_KAFKA_SSL_CAFILE = env.text("KAFKA_SSL_CAFILE")
JOBLINE_KAFKA_SSL_CERTFILE = env.text("KAFKA_SSL_CERTFILE")
JOBLINE_KAFKA_SSL_KEYFILE = env.text("KAFKA_SSL_KEYFILE")

# Event subscriptions (docs/how-to/notifications.md).
JOBLINE_EVENTS_POLL_SECONDS = env.number("JOBLINE_EVENTS_POLL_SECONDS", 1.0)
JOBLINE_EVENTS_BATCH = int(env.number("JOBLINE_EVENTS_BATCH", 500, int))
JOBLINE_AMQP_URL = env.text("AMQP_URL", "amqp://guest:guest@localhost:5672/")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "kv": {"format": "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"},
    },
    "filters": {"secrets": {"()": "jobline.redact.SecretsFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "kv",
            "filters": ["secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": env.text("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Your own jobs in service mode: apps (with a jobs.py) and plain modules to import.
INSTALLED_APPS += env.text("JOBLINE_EXTRA_APPS").split()
JOBLINE_IMPORT = env.text("JOBLINE_IMPORT").split()
