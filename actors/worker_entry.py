"""Module the `dramatiq` CLI loads in each worker process; importing it boots the worker."""

from __future__ import annotations

from actors.wiring import build_worker_deps
from config import load_settings
from engine.heap import freeze_startup_heap
from engine.logs import configure_logging
from engine.metrics import use_multiprocess_dir
from engine.runtime import resolve_runtime

_settings = load_settings()
configure_logging(_settings.LOG_LEVEL, _settings.LOG_FORMAT)
if _settings.PROMETHEUS_MULTIPROC_DIR is not None:  # set by `flowdesk worker` / `flowdesk run`
    use_multiprocess_dir(_settings.PROMETHEUS_MULTIPROC_DIR, clean=False)
build_worker_deps(_settings, resolve_runtime(_settings))
freeze_startup_heap()  # last: everything above lives as long as the worker
