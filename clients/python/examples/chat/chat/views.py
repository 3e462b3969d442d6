"""The chat pages."""

import os

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def index(request: HttpRequest) -> HttpResponse:
    """Render the room picker."""
    return render(request, "chat/index.html")


def room(request: HttpRequest, room_name: str) -> HttpResponse:
    """Render one room: its message log, an input and a send button."""
    return render(request, "chat/room.html", {"room_name": room_name, "pid": os.getpid()})
