"""HTTP URLs of the chat app: the room picker and the rooms."""

from django.urls import path, re_path

from chat import ROOM_NAME_PATTERN, views

urlpatterns = [
    path("", views.index, name="index"),
    re_path(rf"^{ROOM_NAME_PATTERN}/$", views.room, name="room"),
]
