# C declarations for transports.py (Cython's pure Python mode: the .py is the source).
# The transports stay Python classes (subclasses of asyncio's); what they gain
# from C is calling the socket reads and writes of sysio as C functions.
from treadle._core.sysio cimport recv_copy, recv_into, send
