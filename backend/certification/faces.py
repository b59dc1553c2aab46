"""The face engine as the backend uses it: loaded once per worker, run off the event loop.

Model inference is CPU work measured in milliseconds per frame; it runs in a small thread
pool so the event loop keeps serving other residents meanwhile (onnxruntime releases the GIL).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from typing import Any, TypeVar

from backend.face.config import FaceConfig

T = TypeVar("T")


def face_config_from_env(model_dir: str, env: dict[str, str] | None = None) -> FaceConfig:
    """FaceConfig with any field overridden by FACE_<FIELD> in the environment (thresholds are configuration)."""
    env = dict(os.environ if env is None else env)
    values: dict[str, Any] = {"model_dir": model_dir}
    for f in fields(FaceConfig):
        raw = env.get(f"FACE_{f.name.upper()}")
        if raw is None or f.name == "model_dir":
            continue
        default = getattr(FaceConfig, f.name, None)
        if isinstance(default, bool):
            values[f.name] = raw.strip().lower() in {"1", "true", "yes", "on"}
        elif isinstance(default, int):
            values[f.name] = int(raw)
        elif isinstance(default, float):
            values[f.name] = float(raw)
        else:
            values[f.name] = raw
    return FaceConfig(**values)


class FaceRuntime:
    """Lazily loads the engine on first use (start-up stays fast) and runs its work in threads."""

    def __init__(self, config: FaceConfig, *, threads: int = 2) -> None:
        self.config = config
        self._engine: Any = None
        self._lock = asyncio.Lock()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="face")

    async def engine(self) -> Any:
        if self._engine is None:
            async with self._lock:
                if self._engine is None:
                    from backend.face.engine import FaceEngine

                    loop = asyncio.get_running_loop()
                    self._engine = await loop.run_in_executor(self._pool, FaceEngine, self.config)
        return self._engine

    def models_problem(self) -> str | None:
        """Why the face models cannot load (for /readyz), or None when the bundle is in place."""
        from backend.face.models import bundle_problem

        return bundle_problem(self.config.resolved_model_dir())

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
