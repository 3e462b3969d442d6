"""The worker's ASGI application: ``manage.py runworker interop-echo`` serves ``EchoConsumer``."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_worker.settings")
django.setup()

from channels.routing import ChannelNameRouter, ProtocolTypeRouter  # noqa: E402

from django_worker.consumers import EchoConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {"channel": ChannelNameRouter({"interop-echo": EchoConsumer.as_asgi()})}
)
