# C declarations for transports.py (Cython's pure Python mode: the .py is the source).
# The transports stay Python classes (subclasses of asyncio's, whose bases have
# slots, so no extension type can be a base beside them).  A stream transport's
# hot state is a _StreamIO, a final extension type one attribute away; the socket
# reads and writes are sysio's C functions.
cimport cython

from treadle._core.sysio cimport recv_copy, recv_into, send


@cython.final
cdef class _StreamIO:
    cdef public object sock
    cdef public object protocol
    cdef public bytearray recv_buffer
    cdef public Py_ssize_t conn_lost
    cdef public bint eof
    cdef public object buffer
    cdef public Py_ssize_t buffer_size
    cdef public object empty_waiter


cdef _receive_data(object transport, _StreamIO io)

@cython.locals(nbytes=Py_ssize_t)
cdef _receive_into_buffer(object transport, _StreamIO io)

@cython.locals(n=Py_ssize_t)
cdef _write(object transport, _StreamIO io, object data)

@cython.locals(n=Py_ssize_t, size=Py_ssize_t)
cdef _flush(object transport, _StreamIO io)
