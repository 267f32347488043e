# C declarations for streams.py (Cython's pure Python mode: the .py is the source).
# _StreamCore is an extension type holding a stream's state as C fields, with
# its helpers as C methods; SocketStream derives from it and from asyncio's
# BufferedProtocol (which has no state).  The fields are public: Python code
# (the tests, the stream server) reads them by name.
cimport cython


cdef class _StreamCore:
    cdef public object _loop
    cdef public object _transport
    cdef public object _receive
    cdef public bytearray _buffer
    cdef public object _limit
    cdef public object _read_high
    cdef public object _read_waiter
    cdef public object _write_waiter
    cdef public object _lost_fut
    cdef public bint _reading
    cdef public bint _sending
    cdef public bint _read_paused
    cdef public bint _write_paused
    cdef public bint _eof
    cdef public bint _eof_sent
    cdef public bint _lost
    cdef public bint _closed
    cdef public object _error
    cdef public bint _tls

    cdef _check_read(self)
    cdef bint _no_more_data(self) except -1
    @cython.locals(buffer=bytearray)
    cdef bytes _take(self, object size)
    cdef _resume_reading(self)
    cdef object _prepare_read_wait(self)
    cdef _end_read_wait(self, object fut)
    cdef _check_send(self)
    cdef bint _sent(self) except -1
    cdef object _prepare_write_wait(self)
    cdef _end_write_wait(self, object fut)
