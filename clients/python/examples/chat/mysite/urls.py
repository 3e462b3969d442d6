"""URLs: the chat pages, and ``/`` leading to the default room."""

from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("chat/", include("chat.urls")),
    path("", RedirectView.as_view(url="/chat/lobby/", permanent=False)),
]
