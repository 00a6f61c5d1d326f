"""What the providers that call a remote HTTP upstream share: the options every such model has, one
HTTP client per model with its key and timeouts, and the upstream's failures (refusals, 5xx,
timeouts, dropped connections, answers that are not JSON) turned into strato errors.

The wire formats differ per vendor (`remote.py` speaks OpenAI's, `anthropic.py` Anthropic's); how
a request travels and how it fails does not, so it lives here once.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncGenerator, Callable, Mapping
from http import HTTPStatus
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from strato.config import ConfigError
from strato.errors import ContextLengthExceeded, StratoError, UpstreamError, UpstreamTimeout
from strato.jsontext import dumps
from strato.streams import Stream

# Upstream statuses that describe the client's request; passed through to the caller as they are.
CLIENT_STATUSES = {400, 404, 413, 422, 429}


class UpstreamOptions(BaseModel):
    """The options of every model served by a remote HTTP upstream."""

    model_config = ConfigDict(extra="forbid")

    upstream_model: str | None = Field(
        None, description="The model name the upstream knows; default: `name`."
    )
    api_key_env: str | None = Field(None, description="Environment variable holding the upstream API key.")
    timeout: float = Field(600.0, gt=0, description="Seconds to wait for the upstream's next byte.")
    connect_timeout: float = Field(5.0, gt=0, description="Seconds to wait for a connection.")


def read_api_key(model: str, env: str | None) -> str | None:
    """The key in environment variable `env`; a configuration error when it is named but unset."""
    if not env:
        return None
    key = os.environ.get(env)
    if not key:
        raise ConfigError(f"model {model!r}: environment variable {env} is not set")
    return key


class UpstreamClient:
    """Posts JSON to one upstream and returns its answer, whole or as a server-sent event stream.

    `too_long`, given the message of a 400, says whether the upstream refused a prompt longer than
    the model's context; that becomes `ContextLengthExceeded`, which model groups route to their
    `context_fallbacks`. Other refusals pass through with their status (and a 429's retry-after);
    any other failure is a 502, a timeout a 504.

    The HTTP client is aiohttp's: on the gateway's hot path it costs a fraction of httpx's (a
    client posting to a fixed-response upstream managed about 10,900 requests/s against httpx's
    600 here). It is created on first use, inside the running event loop, and keeps connections
    to the upstream alive between requests.
    """

    def __init__(
        self,
        base_url: str,
        options: UpstreamOptions,
        headers: dict[str, str],
        too_long: Callable[[str], bool] | None = None,
        name: str = "",
    ) -> None:
        """`name`: the model this upstream serves, as clients know it. Errors name it to the client;
        the upstream's URL and the transport's own words go to the trace and the log only."""
        self.name = name
        self.base_url = base_url
        self._root = base_url.rstrip("/") + "/"
        self._headers = headers
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=options.connect_timeout, sock_read=options.timeout
        )
        self._too_long = too_long
        self._session: aiohttp.ClientSession | None = None

    def failed(self, what: str, detail: str | None = None, **kw: Any) -> UpstreamError:
        """An error about this upstream: `what` it did, told to the client under the model's name."""
        where = f"upstream {self.base_url}"
        return UpstreamError(
            f"the upstream of model {self.name!r} {what}",
            detail=f"{where}: {detail}" if detail else where,
            **kw,
        )

    def unexpected(self) -> UpstreamError:
        return self.failed("sent an unexpected response")

    async def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            async with self._http().post(self._root + path, json=body) as response:
                raw = await response.read()
                if response.status >= 400:
                    raise self.status_error(response.status, raw, response.headers)
        except UpstreamError:
            raise
        except Exception as exc:
            raise self._transport_error(exc) from None
        try:
            data = json.loads(raw)
        except ValueError:
            raise self.failed("sent a response that is not JSON") from None
        if not isinstance(data, dict):
            raise self.unexpected()
        return data

    async def open_events(self, path: str, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """Start a server-sent event stream. A refusal raises here, before anything is returned;
        the returned generator yields each event's `data:` object until the stream ends (or sends
        OpenAI's `[DONE]`), and closes the connection when it is closed."""
        response: aiohttp.ClientResponse | None = None
        try:
            response = await self._http().post(self._root + path, json=body)
            if response.status >= 400:
                raise self.status_error(response.status, await response.read(), response.headers)
        except BaseException as exc:
            if response is not None:
                response.release()
            raise self._transport_error(exc) from None
        return Stream(self._events(response), on_close=response.close)  # a no-op once released

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
                # One session serves every caller of the model: a cookie the upstream sets in one
                # caller's answer must not go out with the next caller's request.
                cookie_jar=aiohttp.DummyCookieJar(),
                read_bufsize=2**20,  # one SSE line (an event with logprobs) may be long
                raise_for_status=False,
                json_serialize=dumps,  # request bodies with orjson
            )
        return self._session

    async def _events(self, response: aiohttp.ClientResponse) -> AsyncGenerator[dict[str, Any], None]:
        try:
            async for raw in response.content:
                line = raw.decode("utf-8", errors="replace").strip()
                if not line.startswith("data:"):
                    continue  # `event:` names repeat the data's type; blank lines end an event
                payload = line[5:].strip()
                if payload == "[DONE]":
                    return
                event = json.loads(payload)
                if not isinstance(event, dict):
                    raise self.unexpected()
                yield event
        except (UpstreamError, GeneratorExit):
            raise
        except Exception as exc:
            raise self._transport_error(exc) from None
        finally:
            # A stream ended early (the client left, or the upstream failed) cannot go back to the
            # pool half-read; a finished one can.
            if response.content.at_eof():
                response.release()
            else:
                response.close()

    def status_error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> StratoError:
        message = upstream_message(raw, status)
        if status == 400 and self._too_long is not None and self._too_long(message):
            return ContextLengthExceeded(message, param="messages")
        if status in CLIENT_STATUSES:
            after = headers.get("retry-after")  # a 429's advice, for the router and client
            extra = {"retry-after": after} if after else None
            # A 422 (vLLM's and FastAPI's word for an invalid request) is a 400, as at OpenAI.
            refused = 400 if status == 422 else status
            detail = f"upstream {self.base_url} answered {status}"
            return UpstreamError(
                message, status=refused, code="upstream_rejected", headers=extra, detail=detail
            )
        return self.failed(f"answered {status}: {message}")  # its own words; its URL stays internal

    def _transport_error(self, exc: BaseException) -> BaseException:
        if isinstance(exc, TimeoutError):
            return UpstreamTimeout(
                f"the upstream of model {self.name!r} did not answer in time",
                detail=f"upstream {self.base_url}",
            )
        if isinstance(exc, json.JSONDecodeError):
            return self.failed("failed: it sent data that is not JSON", detail=str(exc))
        if isinstance(exc, aiohttp.ClientError | ConnectionError):
            reason = str(exc) or type(exc).__name__
            return self.failed("failed: the connection could not be made or broke off", detail=reason)
        return exc


def upstream_message(raw: bytes, status: int) -> str:
    """The message of an error body: OpenAI's and Anthropic's both put it at `error.message`."""
    try:
        error = json.loads(raw).get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
    except (ValueError, AttributeError):
        pass
    text = raw[:500].decode("utf-8", errors="replace")
    if text:
        return text
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return str(status)
