"""Settings of the interop worker: channels and the chanlayer layer, nothing else.

``CHANLAYER_TARGET`` names the chanlayer server (default ``127.0.0.1:50051``).
"""

import os

SECRET_KEY = "interop-worker-not-a-secret"
DEBUG = False
ALLOWED_HOSTS: list[str] = []
INSTALLED_APPS = ["channels"]
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
ASGI_APPLICATION = "django_worker.asgi.application"

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "chanlayer.ChannelLayer",
        "CONFIG": {"target": os.environ.get("CHANLAYER_TARGET", "127.0.0.1:50051")},
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}
