"""Pipes and child processes: ``connect_read_pipe``, ``connect_write_pipe``, subprocesses.

Owns: the pipe transport factories and the loop's child-process watching.  A
child is watched through a pidfd (``os.pidfd_open``, Linux 5.3 and later)
registered with the poller like any other descriptor, so that no thread, no
``SIGCHLD`` handler and no process-wide child watcher is involved, and loops in
several threads can each run subprocesses.  Where pidfds are missing, a thread
per child waits for it instead.

Never: reaps a process it did not start (it calls ``waitpid`` on its own
children's pids only), or leaves a pidfd open after the loop closes.

The pipe and subprocess transports themselves are the standard library's
(``asyncio.unix_events``), which only need the loop's reader/writer hooks.
"""

from __future__ import annotations

import _thread
import os
from asyncio import unix_events
from typing import Any

from .transports import logger

# Bound now: the monkey patcher replaces os.waitpid with a green version.
_waitpid = os.waitpid

__all__ = ["UnixProcMixin"]


def _exit_status(pid: int) -> int:
    try:
        _, status = _waitpid(pid, 0)
    except ChildProcessError:
        # Someone else reaped it (a process-wide waitpid(-1)).
        logger.warning("child process pid %d exit status already read: will report returncode 255", pid)
        return 255
    return os.waitstatus_to_exitcode(status)


class UnixProcMixin:
    """Pipe transports and pidfd-based subprocess watching; mixed into the loop."""

    _child_pidfds: dict[int, int]

    def _make_read_pipe_transport(self, pipe: Any, protocol: Any, waiter: Any = None, extra: Any = None) -> Any:
        return unix_events._UnixReadPipeTransport(  # type: ignore[attr-defined]
            self, pipe, protocol, waiter, extra
        )

    def _make_write_pipe_transport(self, pipe: Any, protocol: Any, waiter: Any = None, extra: Any = None) -> Any:
        return unix_events._UnixWritePipeTransport(  # type: ignore[attr-defined]
            self, pipe, protocol, waiter, extra
        )

    async def _make_subprocess_transport(
        self,
        protocol: Any,
        args: Any,
        shell: bool,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        bufsize: int,
        extra: Any = None,
        **kwargs: Any,
    ) -> Any:
        loop: Any = self
        waiter = loop.create_future()
        transp = unix_events._UnixSubprocessTransport(  # type: ignore[attr-defined]
            self, protocol, args, shell, stdin, stdout, stderr, bufsize, waiter=waiter, extra=extra, **kwargs
        )
        self._watch_child(transp.get_pid(), transp)
        try:
            await waiter
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            transp.close()
            await transp._wait()
            raise
        return transp

    def _watch_child(self, pid: int, transp: Any) -> None:
        loop: Any = self
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            _thread.start_new_thread(self._wait_child_thread, (pid, transp))
            return
        self._child_pidfds[pidfd] = pid
        loop._add_reader(pidfd, self._child_exited, pidfd, pid, transp)

    def _wait_child_thread(self, pid: int, transp: Any) -> None:
        loop: Any = self
        returncode = _exit_status(pid)
        if not loop.is_closed():
            loop.call_soon_threadsafe(transp._process_exited, returncode)

    def _child_exited(self, pidfd: int, pid: int, transp: Any) -> None:
        loop: Any = self
        loop._remove_reader(pidfd)
        del self._child_pidfds[pidfd]
        os.close(pidfd)
        # Reap through the Popen object: Popen.send_signal() (terminate, kill)
        # polls first and may already have reaped the child; Popen then knows
        # its status, where a waitpid() of ours would find nothing.
        proc = getattr(transp, "_proc", None)
        returncode = proc.wait() if proc is not None and proc.pid == pid else _exit_status(pid)
        transp._process_exited(returncode)

    def _close_child_watch(self) -> None:
        loop: Any = self
        for pidfd in list(self._child_pidfds):
            loop._remove_reader(pidfd)
            os.close(pidfd)
        self._child_pidfds.clear()
