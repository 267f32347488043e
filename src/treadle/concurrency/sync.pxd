# C declarations for sync.py (Cython's pure Python mode: the .py is the source).
# The primitives stay Python classes; a green wait calls wait_in_queue as a C
# function, so that fewer call levels sit on the stack a waiting task saves.
from treadle._core.loop cimport running_loop
from treadle.concurrency.waiting cimport wait_in_queue


cdef object _wait_green(object waiters, object prim, object on_abandon, object what, object timeout, object who, object hub)

cpdef tuple start_async_wait(object waiters, object who, object timeout)
