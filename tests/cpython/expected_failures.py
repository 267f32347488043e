"""CPython tests that cannot pass under any monkey patcher, each with its reason.

Keys are test ids relative to the ``test`` package (``test_x.Class.method``),
or a class (``test_x.Class``) to leave out all its tests.  Keep this short:
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
}
