"""``treadle.monkey``: make the standard library cooperative, as ``gevent.monkey`` does.

``patch_all()`` (first thing in a program, or ``python -m treadle run``) makes
blocking calls of the standard library switch to other green tasks instead of
blocking the thread.  Each module also has its own ``patch_<module>()``.
"""

from .patches import (
    patch_all,
    patch_asyncio,
    patch_os,
    patch_queue,
    patch_select,
    patch_selectors,
    patch_signal,
    patch_socket,
    patch_ssl,
    patch_subprocess,
    patch_thread,
    patch_time,
)
from .registry import get_original, is_patched, patched_modules

__all__ = [
    "get_original",
    "is_patched",
    "patch_all",
    "patch_asyncio",
    "patch_os",
    "patch_queue",
    "patch_select",
    "patch_selectors",
    "patch_signal",
    "patch_socket",
    "patch_ssl",
    "patch_subprocess",
    "patch_thread",
    "patch_time",
    "patched_modules",
]
