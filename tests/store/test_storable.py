"""Whatever text a client sends is storable: traces and scores holding lone surrogates, NUL and any
other code point are written and read back, on SQLite and PostgreSQL, by the real trace writer."""

from __future__ import annotations

import json
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strato.observe.recorder import TraceRecorder
from strato.store.sql import SQLStore
from strato.store.storable import storable, storable_json
from strato.types import Endpoint, Score, Span, Trace

# Every code point, surrogates and NUL included (hypothesis leaves surrogates out by default).
ANY_TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40)
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=8,
)


def test_valid_text_is_left_alone() -> None:
    text = "naïve café 😀 \t\n"
    assert storable(text) == text
    assert json.loads(storable_json({"k": text})) == {"k": text}


def test_lone_surrogates_and_nul_are_stored_as_their_escapes() -> None:
    assert storable("a\ud800b\x00c") == "a\\ud800b\\u0000c"
    assert json.loads(storable_json({"content": "a\udfffb"})) == {"content": "a\\udfffb"}
    assert "\x00" not in storable_json({"k": "\x00"})  # json.dumps writes NUL as an escape already


@given(
    texts=st.lists(ANY_TEXT, min_size=5, max_size=5),
    request=st.dictionaries(ANY_TEXT, JSON_VALUE, max_size=4),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_writer_stores_traces_of_arbitrary_text(
    store_url: str, texts: list[str], request: dict[str, object]
) -> None:
    store = _store(store_url)
    model, user, completion, error, attribute = texts
    span = Span(span_id="s1", name="strato.auth", started_at=1.0, ended_at=2.0, attributes={"x": attribute})
    item = Trace(
        id=uuid.uuid4().hex,
        started_at=1.0,
        endpoint=Endpoint.CHAT,
        requested_model=model,
        user=user,
        request=request,
        completion=completion,
        error=error,
        spans=[span],
    )
    recorder = TraceRecorder(store, flush_interval=0.01)
    recorder.submit(item)
    recorder.close()
    stored = store.trace(item.id)
    assert stored is not None, "the trace was not stored"
    assert recorder.salvaged == 0 and recorder.dropped == 0  # stored whole, not stripped
    assert stored.completion == storable(completion)
    assert stored.user == (storable(user) or "")[:256]
    assert stored.request == json.loads(storable_json(request))
    store.add_scores([Score(trace_id=item.id, name="feedback", value=1.0, source="api", comment=error)])
    assert store.scores(trace_ids=[item.id])[0].comment == storable(error)


_STORES: dict[str, SQLStore] = {}


def _store(url: str) -> SQLStore:
    """One store per database for all of a test's examples (hypothesis reuses the fixture)."""
    if url not in _STORES:
        _STORES[url] = SQLStore.open(url)
    return _STORES[url]
