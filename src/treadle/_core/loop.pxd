# C declarations for loop.py (Cython's pure Python mode: the .py is the source).
# The loop stays a Python class (a subclass of asyncio's AbstractEventLoop);
# what it gains from C is calling the handles' hot path as C functions.
from treadle._core.handles cimport new_handle, new_timer, run_ready
from treadle._core.poller cimport Poller
from treadle._core.timers cimport TimerQueue
