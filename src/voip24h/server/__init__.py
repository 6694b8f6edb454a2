"""ASGI: the composition root (app.py), routes, handlers, the error path, middleware."""
