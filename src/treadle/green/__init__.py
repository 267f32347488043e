"""Green tasks: greenlets that switch on I/O by themselves, on treadle's loop.

Re-exports the green layer's public names; see docs/architecture.md.
"""

from greenlet import getcurrent

from .bridge import await_, run_green, sleep
from .generators import GeneratorTask, drive
from .hub import BlockingInHubError, NeverWokenError, get_hub
from .task import Greenlet, joinall, killall, spawn, spawn_later

__all__ = [
    "BlockingInHubError",
    "GeneratorTask",
    "Greenlet",
    "NeverWokenError",
    "await_",
    "drive",
    "get_hub",
    "getcurrent",
    "joinall",
    "killall",
    "run_green",
    "sleep",
    "spawn",
    "spawn_later",
]
