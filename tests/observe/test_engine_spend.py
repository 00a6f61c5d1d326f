"""A local model's spend reaches the user: on the trace (the request span's attributes) and on
/metrics (per request, and per model since it loaded: busy time, its share of wall time, CPU
seconds and energy, labelled as an estimate where the kernel has no RAPL counter)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.engine.conftest import SMOLLM
from tests.support.inprocess import in_process


async def test_spend_is_on_the_trace_and_on_metrics(tmp_path: Path) -> None:
    async with in_process(tmp_path, [{"name": "smol", **SMOLLM}]) as served:
        body = {"model": "smol", "messages": [{"role": "user", "content": "What is 2+2?"}], "max_tokens": 8}
        answered = await served.http.post("/v1/chat/completions", json=body)
        assert answered.status_code == 200
        assert served.runtime.recorder.flush(10)  # traces are written in batches
        trace = (await served.http.get(f"/v1/traces/{answered.headers['x-strato-trace-id']}")).json()
        root = next(s for s in trace["spans"] if s["parent_id"] is None)
        attributes = root["attributes"]
        assert attributes["strato.energy.source"] == "estimate"
        assert attributes["strato.engine.busy_seconds"] > 0 and attributes["strato.engine.cpu_seconds"] > 0
        assert attributes["strato.energy.joules"] == attributes["strato.engine.cpu_seconds"] * 7.5

        metrics = (await served.http.get("/metrics")).text
        assert 'strato_request_energy_joules_count{model="smol",source="estimate"} 1.0' in metrics
        assert 'strato_request_cpu_seconds_count{model="smol"} 1.0' in metrics
        found = re.search(r'strato_engine_utilisation_ratio\{model="smol"\} ([0-9.e-]+)', metrics)
        assert found is not None and 0 < float(found.group(1)) <= 1
        assert re.search(r'strato_engine_energy_joules\{model="smol",source="estimate"\} [0-9.e-]+', metrics)
