"""Errors a user can be shown. Each carries the HTTP status and OpenAI error fields it maps to.

Anything raised that is not a `StratoError` is a bug; the server still answers it with a 500 in
OpenAI's error format and never with a stack trace.
"""

from __future__ import annotations


class StratoError(Exception):
    status: int = 500
    type: str = "api_error"
    code: str | None = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        detail: str | None = None,
    ) -> None:
        """`message` is what the client is told; `detail`, what only the trace and the log keep
        (an upstream's URL, a transport error's text)."""
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.param = param
        self.headers = headers or {}  # extra response headers, e.g. retry-after on 429 and 503
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    @property
    def internal(self) -> str:
        """What the trace and the log keep: the message, and the detail the client is not shown."""
        return f"{self.message} ({self.detail})" if self.detail else self.message

    def to_body(self) -> dict[str, dict[str, str | None]]:
        """OpenAI's error body: `{"error": {"message", "type", "param", "code"}}`."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InvalidRequest(StratoError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class ContextLengthExceeded(InvalidRequest):
    code = "context_length_exceeded"


class RequestTooLarge(InvalidRequest):
    status = 413
    code = "request_too_large"


class RequestTimeout(InvalidRequest):
    status = 408
    code = "request_timeout"


class ModelNotFound(StratoError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class UpstreamError(StratoError):
    """A remote upstream failed or could not be reached."""

    status = 502
    type = "upstream_error"
    code = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        status: int = 502,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message, param=param, code=code, status=status, headers=headers, detail=detail)


class UpstreamTimeout(UpstreamError):
    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message, status=504, code="upstream_timeout", detail=detail)


class ClientDisconnected(StratoError):
    """The client went away before the answer was complete (recorded as 499, as nginx does)."""

    status = 499
    type = "client_disconnected"
    code = "client_disconnected"


def first_line(exc: BaseException, limit: int = 200) -> str:
    """What went wrong, in one line a user can act on: the first line of the exception's message (a
    database driver's own, when SQLAlchemy wraps one), else its type's name."""
    text = str(getattr(exc, "orig", None) or exc).strip() or type(exc).__name__
    return text.splitlines()[0][:limit]
