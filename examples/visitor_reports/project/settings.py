"""Settings of the visitor reports example: a Django project with jobline as a library.

From the environment: DATABASE_URL (default: db.sqlite3 here), DYNAMODB_ENDPOINT_URL (default:
AWS itself), DYNAMODB_TABLE, DYNAMODB_REGION, and the usual AWS credentials for boto3.
"""

from __future__ import annotations

import os
from pathlib import Path

import jobline

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("SECRET_KEY", "visitor-reports-example-not-secret")
DEBUG = os.environ.get("DEBUG") == "true"
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]

# jobline.database: WAL, a busy timeout and IMMEDIATE transactions on SQLite, so the web
# server, the scheduler and the worker share one file without "database is locked".
DATABASES = {
    "default": jobline.database(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
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
    "reports",
]
MIDDLEWARE = [
    "whitenoise.middleware.WhiteNoiseMiddleware",  # the admin's CSS under `jobline up`
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "project.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
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
STATIC_URL = "/static/"
WHITENOISE_USE_FINDERS = True
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DYNAMODB_ENDPOINT_URL = os.environ.get("DYNAMODB_ENDPOINT_URL") or None
DYNAMODB_TABLE = os.environ.get("DYNAMODB_TABLE", "page_views")
DYNAMODB_REGION = os.environ.get("DYNAMODB_REGION", "us-east-1")
