"""What a route uses, from the composition root the app was created with (`app.state.runtime`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import Scope

from strato.runtime import Runtime


def services(request: Request) -> Runtime:
    found: Runtime = request.app.state.runtime
    return found


def services_of(scope: Scope) -> Runtime:
    """The same, for plain ASGI middleware (no `Request` yet)."""
    found: Runtime = scope["app"].state.runtime
    return found
