"""Admin API for fine-tuning: start a job (`POST /admin/tune/jobs`, what `strato tune run` does),
list the jobs, show one. The job trains in a worker process while the gateway keeps serving
(`strato.tune.service`); once finished, its model is served by this gateway and gated."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from strato.server.admin import FORBIDDEN, admin_services
from strato.server.openapi import BODY_ERRORS, errors
from strato.tune.options import TuneOptions

router = APIRouter(prefix="/admin/tune")


class TuneJobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(description="The data set to train on.")
    version: int | None = Field(None, ge=1, description="Its version; the latest when unset.")
    base: str = Field(description="The configured local model to adapt.")
    name: str = Field(min_length=1, max_length=256, description="The model name the adapter is served as.")
    options: TuneOptions = Field(
        default_factory=TuneOptions, description="Training options (`strato tune run`)."
    )


class TuneJobBody(BaseModel):
    """A fine-tuning job: what was asked, how far it got, and its model once registered."""

    model_config = ConfigDict(extra="allow")

    object: str = "tune.job"
    id: str
    name: str
    base: str
    dataset: str
    version: int
    status: str = Field(description="queued, running, stopped, interrupted, failed or finished.")
    step: int
    steps: int | None
    model: dict[str, Any] | None = Field(description="The registered model: stage and the gate's verdict.")


class TuneJobList(BaseModel):
    object: str = "list"
    data: list[TuneJobBody]


@router.post(
    "/jobs",
    status_code=201,
    response_model=TuneJobBody,
    responses=errors(
        *BODY_ERRORS,
        FORBIDDEN,
        (404, "No data set, or no configured base model, of this name."),
        (409, "A model or another job has this name (`model_name_taken`)."),
        500,
    ),
)
async def create_job(request: Request, body: TuneJobRequest) -> JSONResponse:
    """Queue a fine-tuning job; it starts when the one before it has finished."""
    tune = (await admin_services(request)).tune
    job = await tune.submit(body.dataset, body.version, body.base, body.name, body.options)
    return JSONResponse(await run_in_threadpool(tune.describe, job), status_code=201)


@router.get("/jobs", response_model=TuneJobList, responses=errors(FORBIDDEN, 500))
async def list_jobs(request: Request) -> JSONResponse:
    tune = (await admin_services(request)).tune

    def listed() -> list[dict[str, Any]]:
        return [tune.describe(job) for job in tune.jobs.all()]

    return JSONResponse({"object": "list", "data": await run_in_threadpool(listed)})


# Shown, not enforced: any other id is a job that does not exist (404).
JOB_ID = Path(json_schema_extra={"pattern": "^tune-[0-9a-f]{8}$"})


@router.get("/jobs/{job_id}", response_model=TuneJobBody, responses=errors(FORBIDDEN, 404, 500))
async def get_job(job_id: Annotated[str, JOB_ID], request: Request) -> JSONResponse:
    tune = (await admin_services(request)).tune
    return JSONResponse(await run_in_threadpool(lambda: tune.describe(tune.jobs.get(job_id))))
