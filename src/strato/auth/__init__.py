"""Access control: virtual API keys with allowed models, rate limits and budgets.

`Authority` is the gateway's auth step; `KeyStore` keeps the keys (hashed) in the store's database;
`Limiter` and `Ledger` are the seams a shared (Redis, PostgreSQL) implementation would replace.
"""

from __future__ import annotations

from strato.auth.authority import (
    MASTER_KEY_ID,
    Authority,
    BudgetExceeded,
    Grant,
    InvalidApiKey,
    ModelNotAllowed,
    RateLimited,
    worst_case_cost,
)
from strato.auth.keys import KeySpec, KeyStore, VirtualKey, hash_secret
from strato.auth.limits import InProcessLedger, Ledger, Limiter, SlidingWindowLimiter

__all__ = [
    "MASTER_KEY_ID",
    "Authority",
    "BudgetExceeded",
    "Grant",
    "InProcessLedger",
    "InvalidApiKey",
    "KeySpec",
    "KeyStore",
    "Ledger",
    "Limiter",
    "ModelNotAllowed",
    "RateLimited",
    "SlidingWindowLimiter",
    "VirtualKey",
    "hash_secret",
    "worst_case_cost",
]
