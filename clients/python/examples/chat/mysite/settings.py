"""Settings of the chat example.

Everything that differs between a laptop and a test run comes from the environment:

- ``CHANLAYER_TARGET``: the chanlayer server (default ``127.0.0.1:50051``);
- ``CHAT_ALLOWED_HOSTS``: comma-separated host names (default ``127.0.0.1,localhost``);
  WebSocket connections are only accepted from pages served under these hosts;
- ``CHAT_ROOM_COUNT_REFRESH``: seconds between two reads of a room's size by each connection
  (default 2), so the count also drops when a crashed process's memberships expire;
- ``DJANGO_SECRET_KEY`` and ``DJANGO_DEBUG`` (``1`` or ``0``, default ``1``).
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# An example, not a deployment: set DJANGO_SECRET_KEY anywhere else.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "chat-example-not-a-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("CHAT_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
    if host.strip()
]

INSTALLED_APPS = [
    # First, so that `manage.py runserver` serves the ASGI application with daphne.
    "daphne",
    "chat",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mysite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
            ],
        },
    },
]

ASGI_APPLICATION = "mysite.asgi.application"

# The chat keeps no data: sessions live in signed cookies and the database is in memory,
# so the example needs no migration to run.
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "chanlayer.ChannelLayer",
        "CONFIG": {"target": os.environ.get("CHANLAYER_TARGET", "127.0.0.1:50051")},
    }
}

CHAT_ROOM_COUNT_REFRESH = float(os.environ.get("CHAT_ROOM_COUNT_REFRESH", "2"))

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "chat": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "chanlayer": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
