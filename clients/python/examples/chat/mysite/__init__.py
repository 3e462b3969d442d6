"""The chat example's Django project: settings, URLs and the ASGI application."""
