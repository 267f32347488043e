"""The patch functions: one per standard module, and ``patch_all``.

Owns: which attributes of which standard module are replaced by which green
version, and the order in which ``patch_all`` applies them.

Never: patches half a module (``registry.apply`` is all or nothing), or patches
twice (a second call is a no-op that returns False).
"""

from __future__ import annotations

import sys

from .. import socket as _gsocket
from .. import ssl as _gssl
from . import greenio, greenos, greenselect, greenthread
from .registry import apply, is_patched, undo

__all__ = [
    "patch_all",
    "patch_asyncio",
    "patch_os",
    "patch_select",
    "patch_selectors",
    "patch_signal",
    "patch_socket",
    "patch_ssl",
    "patch_subprocess",
    "patch_thread",
    "patch_queue",
    "patch_time",
]

_SOCKET_NAMES = (
    "socket",
    "create_connection",
    "create_server",
    "socketpair",
    "fromfd",
    "getaddrinfo",
    "gethostbyname",
    "gethostbyname_ex",
    "gethostbyaddr",
    "getnameinfo",
    "getfqdn",
)


def patch_socket() -> bool:
    """``socket``: the green socket class, connection helpers and resolver functions."""
    return apply("socket", {name: getattr(_gsocket, name) for name in _SOCKET_NAMES})


def patch_ssl() -> bool:
    """``ssl``: every context's ``wrap_socket`` returns a green TLS socket.

    The patch is in place: ``ssl.SSLContext.sslsocket_class`` becomes the
    green ``SSLSocket`` (a subclass of the standard one), so contexts made
    before patching, and modules that took ``SSLContext`` early, are covered.
    The module's own names stay: the standard ``ssl`` code refers to
    ``SSLContext`` and ``SSLSocket`` by name in ``super()`` calls, which a
    replacement class would send into a loop.
    """
    return apply("ssl", {"SSLContext.sslsocket_class": _gssl.SSLSocket})


def patch_time() -> bool:
    """``time.sleep`` blocks only the current green task."""
    return apply("time", {"sleep": greenos.sleep})


def patch_select() -> bool:
    """``select.select`` and ``select.poll`` wait on the hub; ``epoll`` is removed, as in gevent.

    A blocking ``epoll`` cannot be made cooperative without replacing it;
    code that looks for it (``selectors``) falls back to ``poll``.
    """
    return apply("select", {"select": greenselect.select, "poll": greenselect.poll}, remove=("epoll",))


def patch_selectors() -> bool:
    """``selectors``: ``DefaultSelector``, ``PollSelector`` and ``SelectSelector`` wait on the hub.

    ``PollSelector`` and ``SelectSelector`` are changed in place (the poll
    object and the select function they call), so that modules which took
    the class before patching (``socketserver``, ``subprocess``) wait on the
    hub too.  ``EpollSelector`` is removed, as ``select.epoll`` is.
    """
    return apply(
        "selectors",
        {
            "DefaultSelector": greenselect.GreenSelector,
            "PollSelector._selector_cls": staticmethod(greenselect.poll),
            "SelectSelector._select": staticmethod(greenselect.select),
        },
        remove=("EpollSelector",),
    )


def patch_os() -> bool:
    """``os.waitpid`` blocks only the current green task.

    ``os.fork`` needs no replacement: every treadle loop renews its epoll and
    wake-up pipe in a forked child by itself (``os.register_at_fork``).
    """
    return apply("os", {"waitpid": greenos.waitpid})


def patch_subprocess() -> bool:
    """``subprocess``: ``Popen.wait``/``communicate``/``run`` and the pipes switch instead of blocking.

    ``Popen._try_wait`` (where ``wait`` blocks in ``os.waitpid``) is replaced
    in place, so is the module's selector class, and it opens the pipes
    (``proc.stdin``/``stdout``/``stderr``) through its ``io`` module, replaced
    by one whose pipes wait on the hub (``greenio``).  ``Popen`` itself stays
    the standard class.  ``Popen.wait(timeout=...)`` also sleeps with
    ``time.sleep``: it is cooperative when ``time`` is patched too (as
    ``patch_all`` does).
    """
    return apply(
        "subprocess",
        {
            "Popen._try_wait": greenos.popen_try_wait,
            "_PopenSelector": greenselect.GreenSelector,
            "io": greenio.subprocess_io,
        },
    )


def patch_thread() -> bool:
    """``threading`` and ``_thread``: threads become green tasks, locks green locks, ``local`` task-local.

    As gevent's ``patch_thread``: ``threading.Thread`` runs its target in a
    green task, ``Lock``/``RLock``/``Condition``/``Event``/``Semaphore`` block
    only the current green task, ``threading.local`` is per green task, and
    ``get_ident`` tells green tasks apart.  The loop's own default executor
    keeps real threads.
    """
    import threading
    from _threading_local import local as green_local

    from ..green import task as green_task

    thread_names: dict[str, object] = {
        "start_new_thread": greenthread.start_new_thread,
        "start_new": greenthread.start_new_thread,
        "allocate_lock": greenthread.allocate_lock,
        "allocate": greenthread.allocate_lock,
        "LockType": greenthread.GreenLock,
        "get_ident": greenthread.get_ident,
        "_count": greenthread._count,
        "interrupt_main": greenthread.interrupt_main,
        "_local": green_local,
        "RLock": threading._PyRLock,  # type: ignore[attr-defined]
    }
    threading_names: dict[str, object] = {
        "_allocate_lock": greenthread.allocate_lock,
        "Lock": greenthread.allocate_lock,
        "get_ident": greenthread.get_ident,
        "_CRLock": None,
        "local": green_local,
    }
    if sys.version_info >= (3, 13):
        # Threads are started joinable, with a handle that join() waits on.
        thread_names.update(
            {
                "lock": greenthread.GreenLock,
                "start_joinable_thread": greenthread.start_joinable_thread,
                "_ThreadHandle": greenthread.GreenThreadHandle,
                "_make_thread_handle": greenthread.make_thread_handle,
                "_shutdown": greenthread.shutdown,
                "_get_main_thread_ident": greenthread.get_main_thread_ident,
            }
        )
        threading_names.update(
            {
                "_LockType": greenthread.GreenLock,
                "Lock": greenthread.GreenLock,  # a class since 3.13
                "_start_joinable_thread": greenthread.start_joinable_thread,
                "_ThreadHandle": greenthread.GreenThreadHandle,
                "_make_thread_handle": greenthread.make_thread_handle,
                "_thread_shutdown": greenthread.shutdown,
                "_get_main_thread_ident": greenthread.get_main_thread_ident,
                # Where a dummy thread keeps the object that forgets it when
                # its thread ends: per green task, as the threads are.
                "_thread_local_info": green_local(),
            }
        )
    else:
        # Threads are started with start_new_thread; join() waits on a sentinel lock.
        thread_names["_set_sentinel"] = greenthread._set_sentinel
        threading_names.update(
            {"_start_new_thread": greenthread.start_new_thread, "_set_sentinel": greenthread._set_sentinel}
        )
    done = apply("_thread", thread_names)
    try:
        threading_done = apply("threading", threading_names)
    except BaseException:
        if done:
            undo("_thread")  # both modules or neither
        raise
    if threading_done and "_thread_local_info" in threading_names:
        import atexit

        atexit.register(greenthread.clear_local, threading_names["_thread_local_info"])
    if greenthread.green_exit not in green_task.exit_hooks:
        green_task.exit_hooks.append(greenthread.green_exit)
    return done


def patch_queue() -> bool:
    """``queue``: ``SimpleQueue`` becomes the pure-Python one, built on (green) ``threading`` locks.

    ``Queue``, ``LifoQueue`` and ``PriorityQueue`` need nothing more than the
    thread patch: they use ``threading``'s locks and conditions.
    """
    import queue

    return apply("queue", {"SimpleQueue": queue._PySimpleQueue})  # type: ignore[attr-defined]


def patch_signal() -> bool:
    """``signal``: nothing to replace; recorded so that ``is_patched('signal')`` is true.

    treadle watches child processes with pidfds, so it needs no ``SIGCHLD``
    handler and leaves the program's signal handlers alone; they run in the
    main thread as always, in whatever task is current.
    """
    return apply("signal", {})


def patch_asyncio() -> bool:
    """Make treadle the asyncio event loop (``asyncio.run`` and ``new_event_loop`` use it)."""
    if is_patched("asyncio"):
        return False
    from .._runner import install

    install()
    return apply("asyncio", {})


_PATCHES = {
    "socket": patch_socket,
    "ssl": patch_ssl,
    "time": patch_time,
    "select": patch_select,
    "selectors": patch_selectors,
    "os": patch_os,
    "subprocess": patch_subprocess,
    "signal": patch_signal,
    "thread": patch_thread,
    "queue": patch_queue,
    "asyncio": patch_asyncio,
}


def patch_all(**flags: bool) -> list[str]:
    """Patch every module (or those whose flag is true; ``module=False`` leaves one out).

    Flags: ``socket``, ``ssl``, ``time``, ``select``, ``selectors``, ``os``,
    ``subprocess``, ``signal``, ``thread``, ``queue``, ``asyncio``.  Unknown flags raise ``TypeError``.
    Idempotent.  Returns the names of the modules patched by this call.
    """
    unknown = sorted(set(flags) - set(_PATCHES))
    if unknown:
        raise TypeError(f"patch_all() got unknown flag(s) {', '.join(unknown)}; known: {', '.join(_PATCHES)}")
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise TypeError(f"patch_all() flag {name}= must be True or False, got {value!r}")
    return [name for name, patch in _PATCHES.items() if flags.get(name, True) and patch()]
