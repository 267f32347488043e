# C declarations for waiting.py (Cython's pure Python mode: the .py is the source).
# GreenWaiter and WaitQueue are final classes of plain attributes: extension
# types, so that a wait on a primitive (add, add_green, set_result, the
# wake-up, wait) works on C fields and the primitives call the queue's
# methods as C.
cimport cython

from treadle._core.loop cimport running_loop
from treadle._core.loopcore cimport schedule_soon
from treadle.green.hub cimport Hub, switch_to_hub

cdef int _PENDING, _DONE, _CANCELLED


@cython.final
cdef class GreenWaiter:
    cdef Hub _hub
    cdef object _glet
    cdef int _state
    cdef object _value

    cpdef object wait(self, object what)
    cpdef set_result(self, object value)


@cython.locals(waiter=GreenWaiter)
cdef bint _waiting(object fut) except -1

@cython.locals(waiter=GreenWaiter)
cdef _complete(object fut, object value)


@cython.final
cdef class WaitQueue:
    cdef object _entries

    cpdef object add(self, object who=*, object loop=*)
    cpdef GreenWaiter add_green(self, object who, Hub hub)
    cpdef bint waiting_for(self, object who) except -1
    cpdef discard(self, object fut)
    @cython.locals(entry=tuple)
    cpdef object pop_first_live(self)
    cpdef put_back(self, tuple entry)
    @cython.locals(entry=tuple)
    cpdef bint wake_first(self, object value=*) except -1
    @cython.locals(woken=Py_ssize_t)
    cpdef Py_ssize_t wake_all(self, object value=*) except -1
    cpdef abandon(self, object fut, object on_abandon)


cpdef object wait_in_queue(WaitQueue waiters, GreenWaiter waiter, object what, object prim, object on_abandon)
