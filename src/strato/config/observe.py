"""The `observe:` section of the configuration: anomaly detection on responses, alert webhooks, and
OpenTelemetry export."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# What `strato.observe.anomalies` finds, as `trace.anomalies`, metric labels and alert kinds name it.
ANOMALY_KINDS = (
    "EMPTY_ANSWER",
    "REPEATED_CHARACTER",
    "REPEATED_TOKEN",
    "RUNAWAY_REPETITION",
    "INVALID_JSON",
    "REFUSAL",
    "LANGUAGE_SWITCH",
    "SLOW",
    "EXPENSIVE",
)


class AnomalySettings(BaseModel):
    """Checks run on every response; what they find is stored on the trace (`anomalies`), counted in
    `/metrics` and sent to the alert webhooks."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Check every response for anomalies.")
    latency_factor: float = Field(
        5.0,
        gt=1,
        description="A response is SLOW when it took longer than this many times the model's median "
        "latency over its recent responses.",
    )
    cost_factor: float = Field(
        5.0,
        gt=1,
        description="A response is EXPENSIVE when it cost more than this many times the model's median "
        "cost over its recent responses.",
    )
    history: int = Field(
        200,
        ge=10,
        description="How many recent responses per model the latency and cost norms are taken over.",
    )
    min_history: int = Field(
        20, ge=5, description="Latency and cost are judged only once a model has this many recent responses."
    )

    @model_validator(mode="after")
    def _enough_history(self) -> Self:
        if self.min_history > self.history:
            raise ValueError(f"min_history ({self.min_history}) must not exceed history ({self.history})")
        return self


class AlertSettings(BaseModel):
    """Webhooks told about anomalies as they are found (a JSON POST per alert)."""

    model_config = ConfigDict(extra="forbid")

    webhooks: list[str] = Field(default_factory=list, description="URLs to POST each alert to.")
    min_interval_seconds: float = Field(
        60.0,
        ge=0,
        description="At most one alert per anomaly kind and model in this many seconds; the next alert "
        "says how many were held back in between.",
    )
    kinds: list[str] | None = Field(
        None, description="Only these anomaly kinds are sent (None: all of them)."
    )
    timeout_seconds: float = Field(5.0, gt=0, description="How long one webhook call may take.")

    @field_validator("webhooks")
    @classmethod
    def _urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an http:// or https:// URL")
        return urls

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, kinds: list[str] | None) -> list[str] | None:
        if kinds is None:
            return None
        upper = [k.upper() for k in kinds]
        unknown = [k for k in upper if k not in ANOMALY_KINDS]
        if unknown:
            raise ValueError(f"unknown anomaly kind {unknown[0]!r}; the kinds are {', '.join(ANOMALY_KINDS)}")
        return upper


class OtelSettings(BaseModel):
    """OpenTelemetry export. Spans and metrics are always stored and exposed by strato itself; they are
    also sent over OTLP/HTTP when an endpoint is set here or in `OTEL_EXPORTER_OTLP_ENDPOINT`."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str | None = Field(
        None,
        description="OTLP/HTTP base URL (e.g. http://collector:4318); overrides "
        "`OTEL_EXPORTER_OTLP_ENDPOINT`.",
    )
    service_name: str = Field("strato", description="The `service.name` resource attribute.")
    metrics_interval_seconds: float = Field(
        10.0, gt=0, description="How often metrics are pushed to the OTLP endpoint."
    )


class ObserveSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    durable: bool = Field(
        False,
        description="Commit each request's trace before its answer is released (the end of a stream "
        "waits for it), so a crash loses no trace of an answered request. Commits are grouped, but "
        "every request waits for one. Off: traces are written in batches every "
        "`store.flush_interval`, and a crash (`kill -9`) can lose that last interval's traces. "
        "Budget spend is committed before the answer either way.",
    )
    anomalies: AnomalySettings = Field(
        default_factory=AnomalySettings, description="Which response anomalies are checked and when."
    )
    alerts: AlertSettings = Field(
        default_factory=AlertSettings, description="Webhooks told of anomalies, rate-limited per kind."
    )
    otel: OtelSettings = Field(
        default_factory=OtelSettings, description="Spans and metrics over OTLP/HTTP, when an endpoint is set."
    )
