"""Load a model once, on first use, on the thread that will run it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class LazyModel(Generic[T]):
    """Holds a model that `open` loads the first time it is needed. Concurrent first requests wait
    for one load. Loading runs on `executor`, the thread that serves the model, so the event loop
    never blocks on disk or weights."""

    def __init__(self, name: str, executor: ThreadPoolExecutor, open_model: Callable[[], T]) -> None:
        self.name = name
        self._executor = executor
        self._open = open_model
        self._lock = asyncio.Lock()
        self.value: T | None = None

    @property
    def loaded(self) -> bool:
        return self.value is not None

    async def get(self) -> T:
        if self.value is None:
            async with self._lock:
                if self.value is None:
                    log.info("loading model %s", self.name)
                    started = time.perf_counter()
                    loop = asyncio.get_running_loop()
                    self.value = await loop.run_in_executor(self._executor, self._open)
                    log.info("loaded model %s in %.1fs", self.name, time.perf_counter() - started)
        return self.value
