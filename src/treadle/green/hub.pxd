# C declarations for hub.py (Cython's pure Python mode: the .py is the source).
# Hub and Waiter are final classes of plain attributes: extension types, so that
# every green wait (switch_to_hub, a Waiter's switch) reads C fields.
cimport cython


@cython.final
cdef class Hub:
    cdef public object loop
    cdef public object glet
    cdef public object fdwaits
    cdef public dict waiters
    cdef public set tasks
    cdef public dict pending


@cython.final
cdef class Waiter:
    cdef public object glet
    cdef public bint armed


cpdef Hub green_hub()

cpdef object switch_to_hub(object what, Hub hub=*)
