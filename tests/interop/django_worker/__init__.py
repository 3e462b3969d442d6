"""A Django project whose only job is a ``runworker`` consumer, for the interop test."""
