"""The app factory. All state lives on `app.state`; nothing happens at import time."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from strato import __version__
from strato.config import Settings
from strato.gateway import Gateway
from strato.server.admin import AdminGuardMiddleware
from strato.server.admin import router as admin_router
from strato.server.errors import install_error_handlers
from strato.server.feedback import router as feedback_router
from strato.server.guards import router as guards_router
from strato.server.keys import router as keys_router
from strato.server.middleware import BodyLimitMiddleware, TraceContextMiddleware, UnicodeBodyMiddleware
from strato.server.openapi import install_openapi
from strato.server.routes import router
from strato.server.traces import router as traces_router


def create_app(settings: Settings, gateway: Gateway) -> FastAPI:
    """An ASGI app serving `gateway`. The app closes the gateway when it shuts down, which stores
    every trace still queued."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await gateway.aclose()

    app = FastAPI(title="strato", version=__version__, lifespan=lifespan)
    app.state.gateway = gateway
    app.state.settings = settings
    app.state.started = int(time.time())
    app.include_router(router)
    app.include_router(admin_router)
    app.include_router(keys_router)
    app.include_router(guards_router)
    app.include_router(traces_router)
    app.include_router(feedback_router)
    install_error_handlers(app)
    install_openapi(app, settings)
    app.add_middleware(AdminGuardMiddleware)
    app.add_middleware(UnicodeBodyMiddleware)
    server = settings.server
    app.add_middleware(BodyLimitMiddleware, limit=server.max_body_bytes, timeout=server.body_timeout_seconds)
    app.add_middleware(TraceContextMiddleware)
    return app
