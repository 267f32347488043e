# C declarations for sockops.py (Cython's pure Python mode: the .py is the source).
# The mixin stays a Python class; what it gains from C is its coroutines
# compiled, the kept reader as an extension type, the read wait's two halves
# and the socket check as C functions that read the loop's fields (LoopCore),
# and the socket reads and writes of sysio called as C functions.
cimport cython

from treadle._core.loopcore cimport LoopCore
from treadle._core.poller cimport Poller
from treadle._core.sysio cimport nbytes, recv, recv_into, send


@cython.final
cdef class _KeptReader:
    cdef public LoopCore loop
    cdef public int fd
    cdef public object owner
    cdef public object fut
    cdef public object handle
    cdef public long long since

    @cython.locals(poller=Poller)
    cpdef wake(self)

    cpdef drop(self)


cdef _check_sock(object sock)

@cython.locals(kept=_KeptReader, poller=Poller)
cdef _KeptReader _start_read_wait(LoopCore loop, object sock)

@cython.locals(poller=Poller)
cdef _end_read_wait(LoopCore loop, _KeptReader kept, object fut)
