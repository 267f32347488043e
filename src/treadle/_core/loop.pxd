# C declarations for loop.py (Cython's pure Python mode: the .py is the source).
# The loop stays a Python class (a subclass of asyncio's BaseEventLoop); what
# it gains from C is one iteration (_iterate) that calls the handles' hot path,
# the poller and the timer queue as C functions and C types.
cimport cython

from treadle._core.handles cimport new_handle, new_timer, run_ready
from treadle._core.poller cimport Poller
from treadle._core.sysio cimport recv
from treadle._core.threadstate cimport thread_get, thread_set
from treadle._core.timers cimport TimerQueue

cdef bint _COMPILED

cpdef object running_loop()


@cython.locals(poller=Poller, ntodo=Py_ssize_t)
cpdef _iterate(object loop, object ready, TimerQueue timers)

@cython.locals(deadline=object, timeout=double)
cdef double _sleep_timeout(object loop, TimerQueue timers, Poller poller) except? -2.0

cdef Py_ssize_t _registrations_lower_bound(object loop, Poller poller) except? -1

@cython.locals(timers=TimerQueue)
cdef object _schedule_at(object loop, object when, object callback, tuple args, object context, str method)
