# C declarations for task.py (Cython's pure Python mode: the .py is the source).
# Greenlet is an extension type whose base is greenlet's own C type, so that a
# green task's state is C fields (read and written as C by its own methods, and
# traversed by the collector as C) instead of the slots of a Python class.
cimport cython

from treadle._core.loopcore cimport LoopCore
from treadle.green.hub cimport Hub, get_hub


# greenlet's object as its public header (greenlet/greenlet.h, greenlet 2.0 and
# later) lays it out.  check_size error: if an installed greenlet's object were
# another size, importing this module fails with a ValueError that says so,
# instead of a Greenlet whose fields overlap greenlet's own.
cdef extern from *:
    """
    typedef struct {
        PyObject_HEAD
        PyObject *weakreflist;
        PyObject *dict;
        void *pimpl;
    } treadle_PyGreenlet;
    """
    ctypedef class greenlet.greenlet [object treadle_PyGreenlet, check_size error]:
        pass


cdef class Greenlet(greenlet):
    cdef public Hub _hub
    cdef public LoopCore _loop
    cdef public object _fn
    cdef public tuple _args
    cdef public object _kwargs
    cdef public object _name
    cdef public object _state
    cdef public object _result
    cdef public object _exc
    cdef public list _callbacks
    cdef public bint _log_traceback
    cdef public bint _started
    cdef public bint _cancel_requested
    cdef public object _cancel_message
    cdef public Py_ssize_t _num_cancels_requested
    cdef public object _start_handle
    cdef public bint _asyncio_future_blocking

    # Called by the task's own methods (and spawn) only: C calls, not visible from Python.
    cdef _setup(self, object fn, tuple args, dict kwargs)
    cdef _start_soon(self)
    cdef _finish(self, object result, object exc)
    cdef _finish_cancelled(self, object exc)
    cdef _forget(self)
    cdef _schedule_callbacks(self)


@cython.locals(task=Greenlet)
cdef bint _task_done(object t) except -1

@cython.locals(task=Greenlet)
cdef Greenlet _spawn_greenlet(object fn, tuple args, dict kwargs)
