"""The app factory. All state lives on one object, the runtime on `app.state`; nothing happens at
import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

from strato import __version__
from strato.runtime import Runtime
from strato.server.admin import AdminGuardMiddleware
from strato.server.admin import router as admin_router
from strato.server.dispatch import ModelRouteDispatch
from strato.server.errors import install_error_handlers
from strato.server.feedback import router as feedback_router
from strato.server.guards import router as guards_router
from strato.server.keys import router as keys_router
from strato.server.middleware import BodyLimitMiddleware, TraceContextMiddleware, UnicodeBodyMiddleware
from strato.server.openapi import install_openapi
from strato.server.routes import model_router, router
from strato.server.traces import router as traces_router
from strato.server.tune import router as tune_router

NO_FASTAPI_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(runtime: Runtime) -> FastAPI:
    """An ASGI app serving `runtime`'s gateway. The app closes the runtime when it shuts down, which
    stores every trace still queued."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime.start()
        yield
        await runtime.aclose()

    settings = runtime.settings
    # strato traces every request itself (spans, OTLP export: `strato.observe`). FastAPI's own
    # telemetry would add a second, unlinked span per request once a global OpenTelemetry provider
    # is set, and checks three providers on every request even when none is (3% of a request's CPU).
    app = FastAPI(title="strato", version=__version__, lifespan=lifespan, telemetry=NO_FASTAPI_TELEMETRY)
    app.state.runtime = runtime  # what every route uses: `server.services.services(request)`
    app.include_router(model_router)
    app.include_router(router)
    app.include_router(admin_router)
    app.include_router(keys_router)
    app.include_router(guards_router)
    app.include_router(traces_router)
    app.include_router(feedback_router)
    app.include_router(tune_router)
    install_error_handlers(app)
    install_openapi(app, settings)
    app.add_middleware(AdminGuardMiddleware)
    app.add_middleware(UnicodeBodyMiddleware)
    server = settings.server
    limit, timeout = server.max_body_bytes, server.body_timeout_seconds
    app.add_middleware(BodyLimitMiddleware, limit=limit, timeout=timeout)
    app.add_middleware(TraceContextMiddleware)
    # Outermost: the model routes' requests take their own short way to their endpoints.
    app.add_middleware(ModelRouteDispatch, routes=model_router.routes, limit=limit, timeout=timeout)
    return app
