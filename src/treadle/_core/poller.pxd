# C declarations for poller.py (Cython's pure Python mode: the .py is the source).
# Poller and _Entry are final classes of plain attributes, so they compile to
# extension types: the per-event work of poll() (the map lookup, the entry's
# handles, the event bits) runs on C fields instead of attribute dictionaries.
cimport cython

cdef int _EPOLLIN, _EPOLLOUT, _READ_MASK, _WRITE_MASK


@cython.final
cdef class _Entry:
    cdef public object reader
    cdef public object writer
    cdef public int mask


@cython.final
cdef class Poller:
    cdef object _epoll
    cdef dict _fds
    cdef int _maxevents
    cdef public long long polls

    cdef _update(self, int fd, _Entry entry, int mask)
    cdef _rearm(self, int fd, _Entry entry, int mask)
    cdef _rebuild(self)

    @cython.locals(entry=_Entry, fd=int, ev=int, n=Py_ssize_t, stale=bint)
    cpdef int poll(self, double timeout, object ready) except -1
