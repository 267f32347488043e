"""Networking for green and async code: the green socket, TLS, DNS and servers.

See docs/architecture.md.
"""
