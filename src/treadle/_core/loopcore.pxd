# C declarations for loopcore.py (Cython's pure Python mode: the .py is the source).
# LoopCore is an extension type whose fields are the loop's hot state; CoreLoop
# (loop.py) derives from it and from asyncio's BaseEventLoop, so the functions
# below read the fields of any treadle loop as C.  The fields are public: Python
# code (BaseEventLoop's methods, the tests) reads and writes them by name.
cimport cython

from treadle._core.handles cimport new_handle, new_timer, run_ready
from treadle._core.poller cimport Poller
from treadle._core.timers cimport TimerQueue

cdef object _append, _popleft


cdef class LoopCore:
    cdef public object _ready
    cdef public bint _closed
    cdef public bint _debug
    cdef public bint _stopping
    cdef public object _thread_id
    cdef public Poller _poller
    cdef public TimerQueue _timers
    cdef public object _clock
    cdef public double _clock_resolution
    cdef public object _idle_hook
    cdef public object _stall_hook
    cdef public object _green_fdwaits
    cdef public Py_ssize_t _kept_idle
    cdef public object _kept_readers
    cdef public object _transports
    cdef public object _recv_buffer
    cdef public object _csock
    cdef public bint _wakeup_pending
    cdef public object _task_factory


cpdef object schedule_soon(LoopCore loop, object callback, tuple args, object context)

cpdef run_until_stopped(LoopCore loop)

@cython.locals(poller=Poller, timers=TimerQueue, ntodo=Py_ssize_t)
cpdef run_once(LoopCore loop)

@cython.locals(deadline=object, timeout=double)
cdef double _sleep_timeout(LoopCore loop) except? -2.0

cpdef Py_ssize_t registrations_lower_bound(LoopCore loop) except? -1

@cython.locals(timers=TimerQueue)
cdef object _schedule_at(LoopCore loop, object when, object callback, tuple args, object context, str method)
