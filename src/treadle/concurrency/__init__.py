"""The concurrency toolkit: what programs are written with, usable from green and async code alike."""

from .threads import DEFAULT_THREAD_LIMIT, to_thread

__all__ = ["DEFAULT_THREAD_LIMIT", "to_thread"]
