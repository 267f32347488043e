# C declarations for fdwait.py (Cython's pure Python mode: the .py is the source).
# FdWaits and _Watch are final classes of plain attributes: extension types, so
# that a green socket's wait (join, wait, leave) works on C fields and calls
# its helpers as C methods.
cimport cython


@cython.final
cdef class _Watch:
    cdef public int fd
    cdef public list readers
    cdef public list writers
    cdef public object read_handle
    cdef public object write_handle
    cdef public object owner
    cdef public bint kept


@cython.final
cdef class FdWaits:
    cdef object _loop
    cdef dict _watches
    cdef Py_ssize_t _kept

    @cython.locals(watch=_Watch, joined=list)
    cpdef bint wait(self, list reads, list writes, object timeout, object what, object timeout_error=*, object owner=*) except -1

    @cython.locals(watch=_Watch)
    cpdef bint wait_one(self, int fd, bint write, object timeout, object what, object timeout_error=*, object owner=*) except -1

    cpdef Py_ssize_t kept_count(self)

    @cython.locals(watch=_Watch)
    cpdef bint holds_idle(self, int fd, object handle)

    cdef object _arm(self, object waiter, object timeout, object timeout_error)

    cdef _set_kept(self, _Watch watch, bint kept)

    @cython.locals(watch=_Watch)
    cdef _Watch _join(self, int fd, bint write, object waiter, object owner)

    cdef _drop_if_unused(self, _Watch watch)

    @cython.locals(waiters=list)
    cdef _leave(self, _Watch watch, bint write, object waiter)

    cdef _unregister(self, _Watch watch, bint write)
