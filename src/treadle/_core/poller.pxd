# C declarations for poller.py (Cython's pure Python mode: the .py is the source).
# Poller and _Entry are final classes of plain attributes, so they compile to
# extension types: the per-event work of poll() (the map lookup, the entry's
# handles, the event bits) runs on C fields instead of attribute dictionaries.
cimport cython

cdef object _append

# poll() calls epoll_wait into an array of struct epoll_event held in a
# bytearray (freed with the poller, sized by _maxevents); select.epoll
# registers each descriptor with data.fd set to it, which is what comes back.
cdef extern from *:
    """
    #include <sys/epoll.h>
    #include <errno.h>
    #include <limits.h>
    #include <math.h>

    static CYTHON_INLINE PyObject *treadle_events_buffer(int maxevents) {
        return PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)maxevents * (Py_ssize_t)sizeof(struct epoll_event));
    }

    /* Events written to `buffer`, or -1 with an exception.  As select.epoll.poll:
       a negative timeout waits forever, others are rounded up to milliseconds.
       EINTR runs the signal handlers and counts as no event (the loop polls again). */
    static CYTHON_INLINE int treadle_epoll_wait(int epfd, PyObject *buffer, double timeout) {
        struct epoll_event *events = (struct epoll_event *)PyByteArray_AS_STRING(buffer);
        int maxevents = (int)(PyByteArray_GET_SIZE(buffer) / (Py_ssize_t)sizeof(struct epoll_event));
        int ms, n;
        if (timeout < 0) {
            ms = -1;
        } else {
            double rounded = ceil(timeout * 1e3);
            ms = rounded >= (double)INT_MAX ? INT_MAX : (int)rounded;
        }
        if (ms == 0) {
            n = epoll_wait(epfd, events, maxevents, 0);
        } else {
            Py_BEGIN_ALLOW_THREADS
            n = epoll_wait(epfd, events, maxevents, ms);
            Py_END_ALLOW_THREADS
        }
        if (n < 0) {
            if (errno == EINTR)
                return PyErr_CheckSignals() < 0 ? -1 : 0;
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        return n;
    }

    static CYTHON_INLINE int treadle_event_fd(PyObject *buffer, int i) {
        return ((struct epoll_event *)PyByteArray_AS_STRING(buffer))[i].data.fd;
    }

    static CYTHON_INLINE int treadle_event_mask(PyObject *buffer, int i) {
        return (int)((struct epoll_event *)PyByteArray_AS_STRING(buffer))[i].events;
    }
    """
    bytearray _c_events_buffer "treadle_events_buffer"(int maxevents)
    int _c_epoll_wait "treadle_epoll_wait"(int epfd, bytearray buffer, double timeout) except -1
    int _c_event_fd "treadle_event_fd"(bytearray buffer, int i)
    int _c_event_mask "treadle_event_mask"(bytearray buffer, int i)

cdef bint _COMPILED
cdef int _EPOLLIN, _EPOLLOUT, _READ_MASK, _WRITE_MASK


@cython.final
cdef class _Entry:
    cdef public object reader
    cdef public object writer
    cdef public int mask


@cython.final
cdef class Poller:
    cdef object _epoll
    cdef int _epfd
    cdef bytearray _events
    cdef dict _fds
    cdef int _maxevents
    cdef public long long polls

    cdef _update(self, int fd, _Entry entry, int mask)
    cdef _rearm(self, int fd, _Entry entry, int mask)
    cdef _rebuild(self)

    @cython.locals(events=bytearray, fd=int, ev=int, n=int, i=int, stale=bint)
    cpdef int poll(self, double timeout, object ready) except -1

    @cython.locals(entry=_Entry)
    cdef bint _queue(self, int fd, int ev, object ready) except -1
