"""The auth step of the request path: who is calling, may they call this model now, and a hold on
their budget for the request's worst-case cost until its real cost is known."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from strato.auth.journal import SpendJournal
from strato.auth.keys import KeyStore, VirtualKey
from strato.auth.limits import (
    InProcessLedger,
    Ledger,
    Limiter,
    LimitsUnavailable,
    SlidingWindowLimiter,
    budgets,
    retry_after,
)
from strato.errors import StratoError
from strato.tokens import prompt_bound
from strato.types import EmbeddingRequest, GenerationRequest, Price

log = logging.getLogger(__name__)

MASTER_KEY_ID = "master"  # what traces show as the key of requests made with the master key
LOOKUP_TTL = 2.0  # seconds a key lookup is reused: revocations reach a running server this fast
DEFAULT_COMPLETION = 4096  # worst-case completion tokens when neither max_tokens nor a context is known


class InvalidApiKey(StratoError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class ModelNotAllowed(StratoError):
    status = 403
    type = "permission_error"
    code = "model_not_allowed"


class RateLimited(StratoError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class BudgetExceeded(StratoError):
    status = 429
    type = "insufficient_quota"
    code = "budget_exceeded"


@dataclass(frozen=True, slots=True)
class Grant:
    """A request let through: by which key and the budget it holds."""

    key_id: str
    key: VirtualKey | None = None
    reserved: float = 0.0
    ticket: str = ""  # names the request to the limiter and the ledger (its rpm count, its hold)
    held: Future[None] | None = None  # the hold's commit to the spend journal, while the request runs


MASTER = VirtualKey(MASTER_KEY_ID, "master key")  # no model list, no limits, no budget


class Authority:
    """Checks every request when a master key is set; lets everything through when none is."""

    def __init__(
        self,
        master_key: str | None,
        keys: KeyStore | None,
        limiter: Limiter | None = None,
        ledger: Ledger | None = None,
        clock: Callable[[], float] = time.time,
        journal: SpendJournal | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`journal`: where budgeted requests' holds and settlements are committed (None: nowhere;
        budgets then start from the key's traced costs, which a crash can lose). `monotonic`: the
        clock the key-lookup cache ages by (`LOOKUP_TTL`); a test's own skips the wait."""
        self.master_key = master_key
        self.keys = keys
        self.limiter = limiter or SlidingWindowLimiter()
        self.ledger = ledger or InProcessLedger(keys.spent if keys is not None else lambda _id, _since: 0.0)
        self.clock = clock
        self.monotonic = monotonic
        self.journal = journal
        self._found: dict[str, tuple[float, VirtualKey | None]] = {}
        # Shared limits are a round trip to Redis or PostgreSQL: run them on threads of their own,
        # never on the event loop. In-process limits stay inline (a check-and-take with no await).
        shared = not (
            isinstance(self.limiter, SlidingWindowLimiter) and isinstance(self.ledger, InProcessLedger)
        )
        self._threads = ThreadPoolExecutor(8, thread_name_prefix="strato-limits") if shared else None

    @classmethod
    def off(cls) -> Authority:
        return cls(None, None)

    @property
    def enabled(self) -> bool:
        return bool(self.master_key)

    def authenticate(self, credential: str | None) -> VirtualKey | None:
        """The caller's key (`MASTER` for the master key); raises 401 for anything else. None when
        auth is off (no master key)."""
        if not self.master_key:
            return None
        if not credential:
            raise InvalidApiKey(
                "You didn't provide an API key. Send it as a bearer token (Authorization: Bearer <key>)."
            )
        if self._is_master(credential):
            return MASTER
        key = self._lookup(credential)
        now = self.clock()
        if key is None or key.revoked_at is not None:
            raise InvalidApiKey(f"Incorrect API key provided: {_masked(credential)}.")
        if key.expired(now):
            raise InvalidApiKey(f"The API key {key.id} has expired.")
        return key

    async def authenticate_async(self, credential: str | None) -> VirtualKey | None:
        """`authenticate`, for the event loop: a secret that is not in the lookup cache is looked up
        in the key store (a SQL query) on a worker thread, so an unknown or uncached secret holds up
        its own request only."""
        uncached = credential and not self._is_master(credential) and not self._cached(credential)
        if self.master_key and uncached:
            assert credential is not None
            await asyncio.to_thread(self._lookup, credential)
        return self.authenticate(credential)

    def admit(
        self,
        key: VirtualKey,
        request: GenerationRequest | EmbeddingRequest,
        price: Price | None,
        context_length: int | None,
        prompt_tokens: int | None = None,
        ticket: str | None = None,
    ) -> Grant:
        """Check an authenticated key's models, rate limits and budgets, holding the request's
        worst-case cost against the budgets (`prompt_tokens`: the prompt's length in the model's own
        tokens, when the model can tell; else a bound that is never low). `ticket` names the
        request to the limits and the spend journal (the gateway passes the trace id; default: a
        random one). Raises 403 or 429 (503 when shared limits do not answer)."""
        if key is MASTER:
            return Grant(key.id)
        if key.models is not None and request.model not in key.models:
            allowed = ", ".join(key.models) or "none"
            raise ModelNotAllowed(
                f"This API key may not use the model {request.model!r} (allowed: {allowed}).", param="model"
            )
        now, ticket = self.clock(), ticket or secrets.token_hex(12)
        wait = self.limiter.admit(key, now, ticket)
        if wait is not None:
            raise RateLimited(
                f"Rate limit reached for API key {key.id} ({_limits(key)}). Try again in "
                f"{retry_after(wait)}s.",
                headers={"retry-after": retry_after(wait)},
            )
        reserved = worst_case_cost(request, price, context_length, prompt_tokens) if budgets(key) else 0.0
        wait = self.ledger.reserve(key, reserved, now, ticket)
        if wait is not None:
            self._release(key, ticket)  # rpm counts the requests that ran, not refusals
            raise BudgetExceeded(
                f"API key {key.id} has reached its budget ({_budgets(key)}).",
                headers={"retry-after": retry_after(wait)},
            )
        return Grant(key.id, key, reserved, ticket)

    async def admit_async(
        self,
        key: VirtualKey,
        request: GenerationRequest | EmbeddingRequest,
        price: Price | None,
        context_length: int | None,
        prompt_tokens: int | None = None,
        ticket: str | None = None,
    ) -> Grant:
        """`admit`, on a thread of its own when the limits are shared, so a slow Redis or
        PostgreSQL holds up this request only, not every request on the event loop. A budgeted
        key's hold goes to the spend journal, committed while the request runs (the answer waits
        for it, with the settlement: `settle_soon`)."""
        if key is MASTER:
            return self.admit(key, request, price, context_length, prompt_tokens, ticket)
        if self._threads is None:
            grant = self.admit(key, request, price, context_length, prompt_tokens, ticket)
        else:
            loop = asyncio.get_running_loop()
            grant = await loop.run_in_executor(
                self._threads, self.admit, key, request, price, context_length, prompt_tokens, ticket
            )
        if self.journal is not None and budgets(key):
            held = self.journal.hold(key.id, grant.ticket, grant.reserved, self.clock())
            grant = dataclasses.replace(grant, held=held)
        return grant

    def release(self, grant: Grant | None) -> Future[None] | None:
        """An admitted request was refused before it reached a model (a guard blocked it): give back
        its rpm count. Its budget hold still goes through `settle`, as for any request. With shared
        limits the count is given back on a thread: the future says when (None: done already)."""
        if grant is not None and grant.key is not None:
            return self._soon(self._release, grant.key, grant.ticket)
        return None

    def settle_soon(self, grant: Grant | None, tokens: int, cost: float | None) -> list[Future[None]]:
        """`settle`, off the event loop when the limits are shared. A budgeted key's settlement also
        goes to the spend journal: the futures are done once the hold and the settlement are
        committed there, and the gateway releases the answer after that. A clean shutdown waits for
        the settles still running."""
        if grant is None or grant.key is None:
            return []
        self._soon(self.settle, grant, tokens, cost)
        if self.journal is None or not budgets(grant.key):
            return []
        settled = self.journal.settle(grant.key.id, grant.ticket, cost or 0.0, self.clock())
        return [grant.held, settled] if grant.held is not None else [settled]

    def _soon(self, work: Callable[..., None], *args: object) -> Future[None] | None:
        if self._threads is None:
            work(*args)
            return None
        return self._threads.submit(work, *args)

    def settle(self, grant: Grant | None, tokens: int, cost: float | None) -> None:
        """The request is over: count its tokens and replace its hold with its real cost."""
        if grant is None or grant.key is None:
            return
        now = self.clock()
        try:
            self.limiter.record(grant.key, tokens, now)
            self.ledger.settle(grant.key, grant.reserved, cost or 0.0, now, grant.ticket)
        except LimitsUnavailable as exc:
            # The answer is out already; its hold lapses on its own (`limits.hold_seconds`).
            log.warning("could not settle request of key %s: %s", grant.key_id, exc.message)

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=True)
        if self.journal is not None:
            self.journal.close()
        self.limiter.close()
        self.ledger.close()  # the key store's database is the composition root's to close

    def _release(self, key: VirtualKey, ticket: str) -> None:
        try:
            self.limiter.release(key, ticket)
        except LimitsUnavailable as exc:
            log.warning("could not give back a request of key %s: %s", key.id, exc.message)

    def _is_master(self, credential: str) -> bool:
        master = self.master_key
        return master is not None and secrets.compare_digest(credential.encode(), master.encode())

    def forget(self, key_id: str) -> None:
        """Drop the cached lookups of a key this process has just revoked or rotated, so its old
        secret is refused here at once (other processes refuse it within `LOOKUP_TTL`)."""
        for secret, (_, key) in list(self._found.items()):
            if key is not None and key.id == key_id:
                del self._found[secret]

    def _cached(self, secret: str) -> bool:
        cached = self._found.get(secret)
        return cached is not None and self.monotonic() - cached[0] < LOOKUP_TTL

    def _lookup(self, secret: str) -> VirtualKey | None:
        assert self.keys is not None
        now = self.monotonic()
        cached = self._found.get(secret)
        if cached is not None and now - cached[0] < LOOKUP_TTL:
            return cached[1]
        key = self.keys.find(secret)
        if len(self._found) > 10_000:  # bounded: random wrong secrets must not grow it forever
            self._found.clear()
        self._found[secret] = (now, key)
        return key


def worst_case_cost(
    request: GenerationRequest | EmbeddingRequest,
    price: Price | None,
    context_length: int | None,
    prompt_tokens: int | None = None,
) -> float:
    """The most a request can cost: its prompt (`prompt_tokens` when the model counted them, else
    `prompt_bound`), plus `max_tokens` (else the model's context, else DEFAULT_COMPLETION)
    generated tokens. 0 for an unpriced model."""
    if price is None:
        return 0.0
    if isinstance(request, EmbeddingRequest):
        return price.cost(prompt_tokens if prompt_tokens is not None else prompt_bound(request), 0)
    prompt = prompt_tokens if prompt_tokens is not None else prompt_bound(request)
    completion = request.params.max_tokens or context_length or DEFAULT_COMPLETION
    return price.cost(prompt, completion)


def _masked(secret: str) -> str:
    return f"{secret[:8]}***{secret[-4:]}" if len(secret) > 12 else "***"


def _limits(key: VirtualKey) -> str:
    return ", ".join(f"{n} {v}" for n, v in (("rpm", key.rpm), ("tpm", key.tpm)) if v is not None)


def _budgets(key: VirtualKey) -> str:
    parts = (("daily", key.budget_daily), ("monthly", key.budget_monthly))
    return ", ".join(f"{n} ${v:g}" for n, v in parts if v is not None)
