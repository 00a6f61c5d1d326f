"""`POST /v1/feedback`: an application (or its users, through it) says how good an answer was.

    {"trace_id": "3f2a...", "score": 1, "label": "helpful", "comment": "...", "correction": "..."}

`trace_id` is the `x-strato-trace-id` header of the answer's response. `score` is required: a
number from 0 (bad) to 1 (good), or true/false for thumbs up/down (stored as 1 and 0); `strato
traces list --feedback negative` finds the answers scored below 0.5. `label` (at most 128
characters), `comment` and `correction` (the answer it should have been) are optional strings;
`source` says who gave it (default "api"). Unknown fields are refused, so a misspelt one is not
lost silently.

The feedback is stored before the answer (201, the stored feedback object), so a 201 means it is
there. Who may give it: as for the traces API, a virtual key only on its own traces (another key's
trace is 404 `trace_not_found`, like one that does not exist), the admin key on any.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    WithJsonSchema,
)
from starlette.concurrency import run_in_threadpool

from strato.errors import InvalidRequest
from strato.observe.export import feedback_json
from strato.observe.recorder import TraceRecorder
from strato.server.openapi import BODY_ERRORS, errors, json_body
from strato.server.resources import Feedback
from strato.server.services import services
from strato.server.traces import TraceNotFound, visible_key, visible_trace
from strato.store import Store
from strato.store.sql import FEEDBACK
from strato.types import Score

router = APIRouter()

FLUSH_WAIT = 5.0  # seconds to wait for the trace writer when the trace is not stored yet


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trace_id: StrictStr = Field(min_length=1, max_length=64)
    score: Annotated[  # the range is checked in `_parsed`, with a message saying what a score is
        StrictBool | StrictInt | StrictFloat,
        WithJsonSchema({"anyOf": [{"type": "boolean"}, {"type": "number", "minimum": 0, "maximum": 1}]}),
    ]
    label: StrictStr | None = Field(None, max_length=128)
    comment: StrictStr | None = None
    correction: StrictStr | None = None
    source: StrictStr = Field("api", min_length=1, max_length=64)


@router.post(
    "/v1/feedback",
    status_code=201,
    response_model=Feedback,
    responses=errors(
        *BODY_ERRORS,
        401,
        (404, "No trace with this id that the key may see (`trace_not_found`)."),
        500,
    ),
    openapi_extra=json_body(
        FeedbackBody,
        "Feedback on the answer of the trace `trace_id`.",
        {"trace_id": "3f2a9c1e8b7d4e6fa0b1c2d3e4f5a6b7", "score": 1, "label": "helpful"},
    ),
)
async def give_feedback(request: Request) -> JSONResponse:
    own = await visible_key(request)  # 401 (audited) before the body is read
    body = _parsed(await request.body())
    score = Score(
        trace_id=body.trace_id,
        name=FEEDBACK,
        value=float(body.score),
        source=body.source,
        comment=body.comment,
        label=body.label,
        correction=body.correction,
    )
    runtime = services(request)
    await run_in_threadpool(_store, runtime.traces, runtime.recorder, score, own)
    return JSONResponse(feedback_json(score), status_code=201)


def _store(store: Store, recorder: TraceRecorder, score: Score, own: str | None) -> None:
    trace = visible_trace(store, score.trace_id, own)
    if trace is None:
        # Feedback may come right after the answer, while its trace waits for the batched writer.
        recorder.flush(FLUSH_WAIT)
        trace = visible_trace(store, score.trace_id, own)
    if trace is None:
        raise TraceNotFound(f"No trace with id {score.trace_id!r}.", param="trace_id")
    store.add_scores([score])


def _parsed(raw: bytes) -> FeedbackBody:
    """The body, or 400 naming the field at fault (`param`)."""
    try:
        data: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest(
            "We could not parse the JSON body of your request. Send a JSON object.", code="invalid_json"
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    try:
        body = FeedbackBody.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(p) for p in first["loc"]]
        param = loc[0] if loc else None
        if first["type"] == "missing":
            message = f"Missing required parameter: '{param}'."
        elif first["type"] == "extra_forbidden":
            message = f"Unknown parameter: '{param}'."
        elif param == "score":
            message = "Invalid value for 'score': use a number from 0 (bad) to 1 (good), or true/false."
        else:
            message = f"Invalid value for '{param}': {first['msg']}."
        raise InvalidRequest(message, param=param) from None
    if not 0 <= body.score <= 1:
        raise InvalidRequest(
            "Invalid value for 'score': use a number from 0 (bad) to 1 (good), or true/false.", param="score"
        )
    return body
