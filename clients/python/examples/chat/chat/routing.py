"""WebSocket URLs of the chat app: ``ws/chat/<room>/``."""

from django.urls import re_path

from chat import ROOM_NAME_PATTERN, consumers

websocket_urlpatterns = [
    re_path(rf"^ws/chat/{ROOM_NAME_PATTERN}/$", consumers.ChatConsumer.as_asgi()),
]
