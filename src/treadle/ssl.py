"""``treadle.ssl``: the standard ``ssl`` module, with green TLS sockets.

Every name of the standard library's ``ssl`` module is here; ``SSLContext``,
``SSLSocket`` and ``create_default_context`` are replaced by the cooperative
versions of ``net.greenssl``.  This is the module the monkey patcher installs
in place of ``ssl``.

Owns: that namespace.  Never: holds logic of its own.
"""

from __future__ import annotations

import ssl as _stdssl

from .net import greenssl as _green

globals().update({k: v for k, v in vars(_stdssl).items() if not k.startswith("__")})

SSLContext = _green.SSLContext
SSLSocket = _green.SSLSocket
create_default_context = _green.create_default_context
green_context = _green.green_context

__all__ = [k for k in vars(_stdssl) if not k.startswith("_")] + ["green_context"]
