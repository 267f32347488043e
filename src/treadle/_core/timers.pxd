# C declarations for timers.py (Cython's pure Python mode: the .py is the source).
# TimerQueue is a final class of plain attributes: an extension type, so that
# the per-iteration calls (next_deadline, pop_due) read C fields.  The loop
# schedules a timer by pushing on _heap itself, hence the public fields.
cimport cython

from treadle._core.handles cimport timer_cancelled, timer_unschedule

cdef Py_ssize_t _COMPACT_MIN
cdef object _append


@cython.final
cdef class TimerQueue:
    cdef public list _heap
    cdef public Py_ssize_t _ncancelled
    cdef public long long _seq

    @cython.locals(heap=list)
    cpdef object next_deadline(self)

    @cython.locals(heap=list, end=double)
    cpdef pop_due(self, double end, object ready)

    @cython.locals(heap=list, live=list)
    cpdef on_cancel(self, object handle)
