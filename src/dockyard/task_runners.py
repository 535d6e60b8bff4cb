"""Task runners: ``from dockyard.task_runners import ThreadPoolTaskRunner``."""

from dockyard.engine.runners import ConcurrentTaskRunner, ThreadPoolTaskRunner

__all__ = ["ConcurrentTaskRunner", "ThreadPoolTaskRunner"]
