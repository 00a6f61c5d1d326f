"""The HTTP layer: the only package that imports the web framework."""

from strato.server.app import create_app

__all__ = ["create_app"]
