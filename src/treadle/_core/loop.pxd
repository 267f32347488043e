# C declarations for loop.py (Cython's pure Python mode: the .py is the source).
# The loop stays a Python class (a subclass of loopcore's LoopCore and of
# asyncio's BaseEventLoop); its hot path is loopcore's.  What it gains from C
# here: the running loop kept in the thread state, and the wake-up pipe's read.
from treadle._core.loopcore cimport LoopCore, run_once, registrations_lower_bound, run_until_stopped
from treadle._core.handles cimport new_handle
from treadle._core.sysio cimport recv
from treadle._core.threadstate cimport thread_get, thread_set

cdef bint _COMPILED

cpdef object running_loop()
