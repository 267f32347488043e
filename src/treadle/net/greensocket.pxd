# C declarations for greensocket.py (Cython's pure Python mode: the .py is the source).
# The green socket stays a Python class (a subclass of socket.socket); what it
# gains from C is calling the socket reads and writes of sysio as C functions.
from treadle._core.sysio cimport nbytes as _nbytes, recv as _recv, recv_into as _recv_into, send as _send
cimport cython

from treadle.green.fdwait cimport FdWaits


@cython.final
cdef class _Waits:
    cdef public bint read
    cdef public bint write
    cdef public int fd
    cdef public str read_what
    cdef public str write_what


@cython.locals(waits=_Waits, fdwaits=FdWaits)
cpdef _wait(object sock, bint write, object timeout)
