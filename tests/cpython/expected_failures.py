"""CPython tests that cannot pass under any monkey patcher, each with its reason.

Keys are test ids relative to the ``test`` package (``test_x.Class.method``),
a class (``test_x.Class``) to leave out all its tests, or a pattern
(``test_x.*.method``, for a test that every class of a mixin has).  Keep this short:
a test that fails because treadle is wrong is a bug to fix, not an entry.
"""

EXPECTED_FAILURES: dict[str, str] = {
    # Not the patcher's doing: AF_VSOCK exists on these machines but cannot
    # connect (the test errors without patching too); patched, the
    # non-blocking connect waits for a writability that never comes.
    "test_socket.ThreadedVSOCKSocketStreamTest": "VSOCK unusable in this VM (fails unpatched too)",
    # A green socket's descriptor is always non-blocking underneath (the
    # timeout is kept in Python); these read the descriptor's own flag.
    "test_socket.NonBlockingTCPTests.testSetBlocking": "reads O_NONBLOCK of the descriptor",
    "test_socket.NonBlockingTCPTests.testSetBlocking_overflow": "reads O_NONBLOCK of the descriptor",
    "test_socket.NonblockConstantTest.test_SOCK_NONBLOCK": "reads O_NONBLOCK of the descriptor",
    # Counts references held by the C function; the cooperative wrapper's
    # exception path holds one more while it re-raises.
    "test_socket.GeneralModuleTests.testRefCountGetNameInfo": "counts the C function's references",
    # These use the C _queue.SimpleQueue directly from several threads: its
    # get() blocks the OS thread in C, which no patcher can make cooperative
    # (the patcher replaces queue.SimpleQueue with the pure-Python one).
    "test_queue.CSimpleQueueTest.test_order": "blocks in C (_queue.SimpleQueue)",
    "test_queue.CSimpleQueueTest.test_many_threads": "blocks in C (_queue.SimpleQueue)",
    "test_queue.CSimpleQueueTest.test_many_threads_nonblock": "blocks in C (_queue.SimpleQueue)",
    "test_queue.CSimpleQueueTest.test_many_threads_timeout": "blocks in C (_queue.SimpleQueue)",
    # Two busy loops that never block, one in a thread: each waits for the
    # other to make progress, which needs threads that preempt each other.
    "test_signal.StressTest.test_stress_modifying_handlers": "needs preemptive threads (two busy loops)",
    "test_threading.InterruptMainTests.test_can_interrupt_tight_loops": "needs preemptive threads (busy loops)",
    # Real thread states: an asynchronous exception set through the C API by
    # thread id, and the kernel's thread ids (green threads share their OS
    # thread's native id).
    "test_threading.ThreadTests.test_PyThreadState_SetAsyncExc": "needs a real thread state per thread",
    "test_threading.ThreadTests.test_various_ops": "counts distinct native (kernel) thread ids",
    "test_threading.ThreadTests.test_various_ops_small_stack": "counts distinct native (kernel) thread ids",
    "test_threading.ThreadTests.test_various_ops_large_stack": "counts distinct native (kernel) thread ids",
    # The _DummyThread that current_thread() makes for a thread not started
    # by threading is kept for ever by CPython; for a green task the patcher
    # drops it when the task ends (as gevent does), or a program of many
    # short tasks that log would keep one per task.
    "test_threading.ThreadTests.test_foreign_thread": "expects the _DummyThread of an ended thread to stay",
    "test_threading.ThreadTests.test_ident_of_no_threading_threads": "expects an ended thread's _DummyThread to stay",
    # Checks that every public name of threading is defined in threading or
    # _thread; the patched get_ident, Lock and local are treadle's.
    "test_threading.MiscTestCase.test__all__": "the patched names are defined by treadle",
    # Python 3.13+: reader threads spin on get(block=False) until another
    # thread shuts the queue down, which needs preemptive threads.
    "test_queue.*.test_shutdown_all_methods_in_many_threads": "needs preemptive threads (busy loops)",
    "test_queue.*.test_shutdown_immediate_all_methods_in_many_threads": "needs preemptive threads (busy loops)",
}
