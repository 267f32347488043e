# C declarations for hub.py (Cython's pure Python mode: the .py is the source).
# Hub and Waiter are final classes of plain attributes: extension types, so that
# every green wait (switch_to_hub, a Waiter's switch) reads C fields.
cimport cython

# The hub of a thread: compiled, in the thread state's dictionary.
from treadle._core.loop cimport running_loop
from treadle._core.loopcore cimport LoopCore
from treadle._core.threadstate cimport thread_get, thread_set


@cython.final
cdef class Hub:
    cdef public LoopCore loop
    cdef public object glet
    cdef public object fdwaits
    cdef public dict waiters
    cdef public set tasks
    cdef public dict pending
    cdef public object wake_context


@cython.final
cdef class Waiter:
    cdef public object glet
    cdef public bint armed


cdef bint _COMPILED

cdef Hub _thread_hub()

cdef _set_thread_hub(Hub hub)

cpdef bint in_hub() except -1

cpdef Hub green_hub()

cpdef Hub get_hub()

cpdef object green_hub_or_async()

cpdef object switch_to_hub(object what, Hub hub=*)
