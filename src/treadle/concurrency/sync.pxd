# C declarations for sync.py (Cython's pure Python mode: the .py is the source).
# _Waitable (every primitive's base: its wait queue and the two styles of
# waiting) and Event are extension types, so that a wait and a wake-up read
# C fields and call the wait queue's methods as C.  The other primitives stay
# Python classes over _Waitable; a green wait calls wait_in_queue as a C
# function, so that fewer call levels sit on the stack a waiting task saves.
from treadle._core.loop cimport running_loop
from treadle.concurrency.waiting cimport WaitQueue, wait_in_queue
from treadle.green.hub cimport Hub, green_hub_or_async


cdef class _Waitable:
    cdef public WaitQueue _waiters

    cpdef bint _try(self, object who) except -1
    cpdef object _take(self, object who, object what, bint blocking=*, object timeout=*)


cdef class Event(_Waitable):
    cdef public bint _flag

    cpdef bint is_set(self)
    cpdef bint _try(self, object who) except -1


cdef object _queue_and_wait_green(WaitQueue waiters, object prim, object on_abandon, object what, object timeout, object who, Hub hub)

cpdef tuple start_async_wait(WaitQueue waiters, object who, object timeout)
