"""The query API (FastAPI, REST + GraphQL); see app.py."""

from .app import create_app, serve

__all__ = ["create_app", "serve"]
