"""The ASGI server: routes, settings, auth and limits."""
