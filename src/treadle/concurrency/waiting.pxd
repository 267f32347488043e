# C declarations for waiting.py (Cython's pure Python mode: the .py is the source).
# GreenWaiter is a final class of plain attributes: an extension type, so that
# a green wait on a primitive (add_green, set_result, the wake-up, wait) works
# on C fields.
cimport cython

from treadle._core.loop cimport running_loop
from treadle.green.hub cimport Hub, switch_to_hub

cdef int _PENDING, _DONE, _CANCELLED


@cython.final
cdef class GreenWaiter:
    cdef Hub _hub
    cdef object _glet
    cdef int _state
    cdef object _value

    cpdef object wait(self, object what)


cpdef object wait_in_queue(object waiters, GreenWaiter waiter, object what, object prim, object on_abandon)
