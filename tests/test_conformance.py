"""CPython's own loop-agnostic asyncio tests, run against treadle's loop.

Each mixin of ``Lib/test/test_asyncio`` that takes a loop factory is subclassed
here with ``treadle.new_event_loop``; the test classes that make their loop with
``asyncio.new_event_loop()`` (TLS, streams) run with treadle's policy installed.  Tests listed in ``conformance_skips``
are skipped with their reason; everything else must pass.
"""

from __future__ import annotations

import asyncio
import unittest

from test.test_asyncio import (
    test_buffered_proto,
    test_events,
    test_sendfile,
    test_server,
    test_sock_lowlevel,
    test_ssl,
    test_sslproto,
    test_streams,
    test_subprocess,
)
from test.test_asyncio import utils as test_utils

import treadle

from .conformance_skips import SKIPS


def _apply_skips(cls: type) -> type:
    for name in dir(cls):
        reason = SKIPS.get(f"{cls.__name__}.{name}") or SKIPS.get(f"*.{name}")
        if reason and name.startswith("test_"):
            setattr(cls, name, unittest.skip(reason)(getattr(cls, name)))
    return cls


@_apply_skips
class TreadleEventLoopTests(test_events.EventLoopTestsMixin, test_events.SubprocessTestsMixin, test_utils.TestCase):
    def create_event_loop(self):
        return treadle.new_event_loop()


@_apply_skips
class TreadleSockTests(test_sock_lowlevel.BaseSockTestsMixin, test_utils.TestCase):
    def create_event_loop(self):
        return treadle.new_event_loop()


@_apply_skips
class TreadleStartServerTests(test_server.SelectorStartServerTests):
    # SelectorStartServerTests adds the Unix-socket case to BaseStartServer.

    def new_loop(self):
        return treadle.new_event_loop()


@_apply_skips
class TreadleBufferedProtocolTests(test_buffered_proto.BaseTestBufferedProtocol, unittest.TestCase):
    def new_loop(self):
        return treadle.new_event_loop()


@_apply_skips
class TreadleSendfileTests(test_sendfile.SendfileTestsBase, test_utils.TestCase):
    def create_event_loop(self):
        return treadle.new_event_loop()


@_apply_skips
class TreadleSubprocessTests(test_subprocess.SubprocessMixin, test_utils.TestCase):
    def setUp(self):
        super().setUp()
        self.loop = treadle.new_event_loop()
        self.set_event_loop(self.loop)


@_apply_skips
class TreadleStartTLSTests(test_sslproto.BaseStartTLS, unittest.TestCase):
    def new_loop(self):
        return treadle.new_event_loop()


class _UnderTreadlePolicy:
    """For CPython test classes that make their loops with asyncio.new_event_loop()."""

    def setUp(self):
        self._old_policy = asyncio.get_event_loop_policy()
        treadle.install()
        super().setUp()
        assert isinstance(self.loop, treadle.EventLoop), type(self.loop)

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            asyncio.set_event_loop_policy(self._old_policy)


@_apply_skips
class TreadleSSLTests(_UnderTreadlePolicy, test_ssl.TestSSL):
    def new_loop(self):
        return treadle.new_event_loop()


@_apply_skips
class TreadleStreamTests(_UnderTreadlePolicy, test_streams.StreamTests):
    pass
