"""The monkey patcher (``treadle.monkey``) and ``python -m treadle run``, each case in a fresh interpreter.

Patching is process-wide and cannot be undone, so every test here runs a
program in a new ``sys.executable`` (``-X dev``, so that unclosed resources and
other warnings show up on stderr) and checks its exit status, its output and,
where nothing is expected there, that stderr is empty.

What is checked: the patch functions (``patch_all`` and one ``patch_<module>``
per module) and their errors; ``is_patched``/``get_original``; the warnings
for patching from a thread or after a user module took an original; the
command line ``run`` (script and ``-m`` module, ``--no-<module>``, missing
targets); seeds 001 and 002 (``time.sleep`` under ``patch_all``); green
``select``/``poll``/``selectors``; ``subprocess`` and ``os.waitpid`` blocking
only their green task; ``os.fork`` after the loop has run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TIMEOUT = 60.0

# The flags of patch_all, in the order it applies them.
PATCH_FLAGS = [
    "socket", "ssl", "time", "select", "selectors", "os", "subprocess", "signal", "thread", "queue", "asyncio",
]  # fmt: skip
# The standard modules those flags patch (``thread`` patches ``_thread`` and ``threading``).
PATCHED_MODULES = sorted([f for f in PATCH_FLAGS if f != "thread"] + ["_thread", "threading"])
# The flags whose patch function patches the standard module of the same name.
PATCH_MODULES = [f for f in PATCH_FLAGS if f not in ("thread", "queue")]


def run_python(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, dev: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``sys.executable [-X dev] args...`` in ``cwd``; return the finished process."""
    full_env = dict(os.environ)
    full_env.pop("PYTHONWARNINGS", None)
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, *(["-X", "dev"] if dev else []), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT,
        cwd=cwd,
        env=full_env,
    )


def write(path: Path, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def run_program(tmp_path: Path, source: str, *args: str, quiet: bool = True) -> list[str]:
    """Run ``source`` as a script; it must exit 0 (and write nothing to stderr if ``quiet``); its stdout lines."""
    script = write(tmp_path / "program.py", source)
    proc = run_python([str(script), *args], cwd=tmp_path)
    assert proc.returncode == 0, f"exit status {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    if quiet:
        assert proc.stderr == "", proc.stderr
    return proc.stdout.splitlines()


def values(lines: list[str]) -> dict[str, str]:
    """``key=value`` output lines as a dict (later lines win)."""
    found = {}
    for line in lines:
        if "=" in line:
            key, _, value = line.partition("=")
            found[key] = value
    return found


# -- patch_all and the patch functions ------------------------------------------------------------


def test_patch_all_returns_the_modules_it_patched_and_is_idempotent(tmp_path: Path) -> None:
    lines = run_program(
        tmp_path,
        """
        from treadle import monkey

        print("first=" + ",".join(monkey.patch_all()))
        print("second=" + ",".join(monkey.patch_all()) + "|")
        print("patched=" + ",".join(monkey.patched_modules()))
        print("each=" + ",".join(str(monkey.is_patched(m)) for m in monkey.patched_modules()))
        """,
    )
    got = values(lines)
    assert got["first"].split(",") == PATCH_FLAGS
    assert got["second"] == "|"
    assert sorted(got["patched"].split(",")) == PATCHED_MODULES
    assert set(got["each"].split(",")) == {"True"}


def test_patch_all_with_flags_patches_only_those_and_then_the_rest(tmp_path: Path) -> None:
    lines = run_program(
        tmp_path,
        """
        import socket
        import time

        from treadle import monkey

        saved = {"socket": socket.socket}  # not a module global: that would be named in a warning
        print("first=" + ",".join(monkey.patch_all(socket=False, ssl=False, asyncio=False)))
        print("socket_unpatched=" + str(socket.socket is saved["socket"] and not monkey.is_patched("socket")))
        print("second=" + ",".join(monkey.patch_all()))
        print("socket_patched=" + str(socket.socket is not saved["socket"] and monkey.is_patched("socket")))
        """,
    )
    got = values(lines)
    assert got["first"].split(",") == ["time", "select", "selectors", "os", "subprocess", "signal", "thread", "queue"]
    assert got["socket_unpatched"] == "True"
    assert got["second"].split(",") == ["socket", "ssl", "asyncio"]
    assert got["socket_patched"] == "True"


# What each patch function must have replaced, as a check run after it (``m`` is the module).
_EFFECT = {
    "socket": "import treadle.net.greensocket as g; ok = m.socket is g.socket and m.create_connection is not o['o']",
    "ssl": (
        "import treadle.ssl as g; c = m.create_default_context(); "
        "ok = c.sslsocket_class is g.SSLSocket and c.verify_mode == m.CERT_REQUIRED"
    ),
    "time": "import treadle.monkey.greenos as g; ok = m.sleep is g.sleep",
    "select": "import treadle.monkey.greenselect as g; ok = m.select is g.select and not hasattr(m, 'epoll')",
    "selectors": (
        "import treadle.monkey.greenselect as g; ok = m.DefaultSelector is g.GreenSelector "
        "and type(m.PollSelector()._selector) is g._GreenPoll and not hasattr(m, 'EpollSelector')"
    ),
    "os": "import treadle.monkey.greenos as g; ok = m.waitpid is g.waitpid",
    "subprocess": "import treadle.monkey.greenos as g; ok = m.Popen._try_wait is g.popen_try_wait",
    "signal": "ok = True",
    "asyncio": "import treadle; lp = m.new_event_loop(); ok = isinstance(lp, treadle.EventLoop); lp.close()",
}

# The attribute whose original ``get_original`` must still give after each patch.
_ORIGINAL = {
    "socket": "create_connection",
    "ssl": "SSLContext.sslsocket_class",
    "time": "sleep",
    "select": "select",
    "selectors": "DefaultSelector",
    "os": "waitpid",
    "subprocess": "Popen._try_wait",
    "signal": "signal",
    "asyncio": "new_event_loop",
}


@pytest.mark.parametrize("module", PATCH_MODULES)
def test_each_patch_function_alone(tmp_path: Path, module: str) -> None:
    """``patch_<module>()`` patches that module (True), then is a no-op (False); the others stay untouched."""
    lines = run_program(
        tmp_path,
        f"""
        import importlib
        import operator

        from treadle import monkey

        m = importlib.import_module({module!r})
        # (o is not a module global: that would be named in a warning)
        o = {{"o": operator.attrgetter({_ORIGINAL[module]!r})(m)}}
        print("first=" + str(monkey.patch_{module}()))
        print("second=" + str(monkey.patch_{module}()))
        print("patched=" + ",".join(monkey.patched_modules()))
        {_EFFECT[module]}
        print("effect=" + str(ok))
        print("original=" + str(monkey.get_original({module!r}, {_ORIGINAL[module]!r}) is o["o"]))
        """,
    )
    got = values(lines)
    assert got["first"] == "True"
    assert got["second"] == "False"
    # Each patch function patches its own module only (patch_subprocess replaces
    # subprocess's own references; it does not patch time or selectors).
    expected = [module]
    assert got["patched"].split(",") == expected
    assert got["effect"] == "True"
    assert got["original"] == "True"


@pytest.mark.parametrize("flag", ["time", "selectors"])
def test_patch_all_with_a_flag_false_leaves_that_module_unpatched(tmp_path: Path, flag: str) -> None:
    """``patch_all(time=False)`` keeps the standard ``time.sleep`` even though subprocess is patched."""
    lines = run_program(
        tmp_path,
        f"""
        import selectors
        import time

        from treadle import monkey

        saved = {{"time": time.sleep, "selectors": selectors.DefaultSelector}}
        done = monkey.patch_all({flag}=False)
        print("returned=" + ",".join(done))
        print("is_patched=" + str(monkey.is_patched({flag!r})))
        print("patched=" + ",".join(monkey.patched_modules()))
        current = {{"time": time.sleep, "selectors": selectors.DefaultSelector}}
        print("unchanged=" + str(current[{flag!r}] is saved[{flag!r}]))
        """,
    )
    got = values(lines)
    assert flag not in got["returned"].split(",")
    assert got["is_patched"] == "False"
    assert flag not in got["patched"].split(","), got["patched"]
    assert got["unchanged"] == "True"


def test_late_patch_warning_points_at_the_callers_line(tmp_path: Path) -> None:
    """The warning about a late module is attributed to the line that called the patch function."""
    write(tmp_path / "late_user.py", "from socket import create_connection\nfrom time import sleep\n")
    lines = run_program(
        tmp_path,
        """
        import warnings

        import late_user  # noqa: F401

        from treadle import monkey

        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            monkey.patch_socket()  # line 10
            monkey.patch_all()  # line 11
        for item in w:
            print("where=" + item.filename.rsplit("/", 1)[-1] + ":" + str(item.lineno))
        """,
    )
    where = [line.removeprefix("where=") for line in lines if line.startswith("where=")]
    assert where == ["program.py:10", "program.py:11"], where


def test_patch_all_rejects_an_unknown_flag_naming_it(tmp_path: Path) -> None:
    lines = run_program(
        tmp_path,
        """
        from treadle import monkey

        try:
            monkey.patch_all(thraed=False)
        except TypeError as exc:
            print("error=" + str(exc))
        print("patched=" + ",".join(monkey.patched_modules()) + "|")
        """,
    )
    got = values(lines)
    assert "thraed" in got["error"]
    assert got["patched"] == "|"  # nothing was patched by the failed call


@pytest.mark.parametrize("value", ["0", "1", "'yes'", "None"])
def test_patch_all_rejects_a_flag_that_is_not_a_bool(tmp_path: Path, value: str) -> None:
    lines = run_program(
        tmp_path,
        f"""
        from treadle import monkey

        try:
            monkey.patch_all(time={value})
        except TypeError as exc:
            print("error=" + str(exc))
        print("patched=" + ",".join(monkey.patched_modules()) + "|")
        """,
    )
    got = values(lines)
    assert "time" in got["error"]
    assert got["patched"] == "|"


def test_is_patched_and_get_original(tmp_path: Path) -> None:
    lines = run_program(
        tmp_path,
        """
        import socket
        import time

        from treadle import monkey

        o = {"sleep": time.sleep, "create_connection": socket.create_connection}  # not module globals
        print("before=" + str(monkey.is_patched("time")) + str(monkey.is_patched("socket")))
        print("before_original=" + str(monkey.get_original("time", "sleep") is o["sleep"]))
        monkey.patch_all()
        print("after=" + str(monkey.is_patched("time")) + str(monkey.is_patched("socket")))
        print("never=" + str(monkey.is_patched("json")))
        print("sleep_replaced=" + str(time.sleep is not o["sleep"]))
        print("sleep_original=" + str(monkey.get_original("time", "sleep") is o["sleep"]))
        both = monkey.get_original("socket", ["create_connection", "socket"])
        print("list=" + str(type(both).__name__) + str(len(both)))
        print("list_items=" + str(both[0] is o["create_connection"] and both[1] is not socket.socket))
        print("list_is_std=" + str(both[1].__module__ == "socket"))
        print("tuple=" + str(monkey.get_original("time", ("sleep", "monotonic")) == [o["sleep"], time.monotonic]))
        try:
            monkey.is_patched(None)
        except TypeError:
            print("bad_name=TypeError")
        """,
    )
    got = values(lines)
    assert got["before"] == "FalseFalse"
    assert got["before_original"] == "True"
    assert got["after"] == "TrueTrue"
    assert got["never"] == "False"
    assert got["sleep_replaced"] == "True"
    assert got["sleep_original"] == "True"
    assert got["list"] == "list2"
    assert got["list_items"] == "True"
    assert got["list_is_std"] == "True"
    assert got["tuple"] == "True"
    assert got["bad_name"] == "TypeError"


def test_patched_socket_is_green_and_select_has_no_epoll(tmp_path: Path) -> None:
    lines = run_program(
        tmp_path,
        """
        from treadle import monkey

        monkey.patch_all()

        import select
        import selectors
        import socket

        import treadle.net.greensocket

        print("socket=" + str(socket.socket is treadle.net.greensocket.socket))
        # SocketType stays the C type, as CPython's test_socket requires.
        import _socket

        print("socket_type=" + str(socket.SocketType is _socket.socket))
        s = socket.socket()
        print("instance=" + str(isinstance(s, treadle.net.greensocket.socket)))
        s.close()
        a, b = socket.socketpair()
        print("pair=" + str(type(a) is treadle.net.greensocket.socket and type(b) is type(a)))
        a.close()
        b.close()
        print("epoll=" + str(hasattr(select, "epoll")))
        sel = selectors.DefaultSelector()
        print("selector=" + type(sel).__name__)
        sel.close()
        """,
    )
    got = values(lines)
    assert got == {
        "socket": "True",
        "socket_type": "True",
        "instance": "True",
        "pair": "True",
        "epoll": "False",
        "selector": "GreenSelector",
    }


def test_patching_from_a_thread_other_than_the_main_one_warns(tmp_path: Path) -> None:
    lines = run_program(
        tmp_path,
        """
        import threading
        import warnings

        from treadle import monkey

        caught = []


        def patch():
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                print("result=" + str(monkey.patch_time()))
            caught.extend(w)


        t = threading.Thread(target=patch)
        t.start()
        t.join()
        for w in caught:
            print("warning=" + w.category.__name__ + ":" + str(w.message))
        print("patched=" + str(monkey.is_patched("time")))
        """,
    )
    got = values(lines)
    assert got["result"] == "True"
    assert got["patched"] == "True"
    warnings = [line for line in lines if line.startswith("warning=")]
    assert len(warnings) == 1, lines
    assert warnings[0].startswith("warning=RuntimeWarning:"), warnings
    assert "thread other than the main one" in warnings[0]


def test_patching_from_the_main_thread_does_not_warn(tmp_path: Path) -> None:
    lines = run_program(
        tmp_path,
        """
        import warnings

        from treadle import monkey

        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            monkey.patch_all()
        print("warnings=" + str(len(w)))
        """,
    )
    assert values(lines)["warnings"] == "0"


def test_user_module_imported_before_patching_is_named_in_a_warning(tmp_path: Path) -> None:
    """A user module holding ``create_connection`` is named; standard modules (ssl, pty) that hold originals are not."""
    write(
        tmp_path / "early_client.py",
        """
        from socket import create_connection


        def connect(address):
            return create_connection(address)
        """,
    )
    lines = run_program(
        tmp_path,
        """
        import pty  # noqa: F401  (the standard library: `from select import select`, `from os import waitpid`)
        import ssl  # noqa: F401  (the standard library: `from socket import socket, create_connection`)
        import warnings

        import early_client  # noqa: F401

        from treadle import monkey

        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            monkey.patch_all()
        for item in w:
            print("warning=" + item.category.__name__ + ":" + str(item.message).replace("\\n", " "))
        """,
    )
    warnings = [line.removeprefix("warning=") for line in lines if line.startswith("warning=")]
    assert len(warnings) == 1, lines
    message = warnings[0]
    assert message.startswith("RuntimeWarning:"), message
    assert "early_client" in message
    assert "create_connection" in message
    assert "'socket'" in message
    for stdlib in ("ssl", "pty"):
        assert f"{stdlib} (" not in message, message


def test_user_module_warning_names_every_late_module(tmp_path: Path) -> None:
    """Two user modules, one holding ``time.sleep`` and one ``select.select``: each patch warns about its holder."""
    write(tmp_path / "late_sleeper.py", "from time import sleep\n")
    write(tmp_path / "late_selector.py", "from select import select as sel\n")
    lines = run_program(
        tmp_path,
        """
        import warnings

        import late_selector  # noqa: F401
        import late_sleeper  # noqa: F401

        from treadle import monkey

        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            monkey.patch_all()
        for item in w:
            print("warning=" + item.category.__name__ + ":" + str(item.message).replace("\\n", " "))
        """,
    )
    warnings = [line.removeprefix("warning=") for line in lines if line.startswith("warning=")]
    assert len(warnings) == 2, lines
    sleeper = [m for m in warnings if "late_sleeper" in m]
    selector = [m for m in warnings if "late_selector" in m]
    assert len(sleeper) == 1 and "'time'" in sleeper[0] and "sleep" in sleeper[0], warnings
    assert len(selector) == 1 and "'select'" in selector[0] and "sel" in selector[0], warnings
    assert all(m.startswith("RuntimeWarning:") for m in warnings)


# -- python -m treadle run --------------------------------------------------------------------------

_REPORT = """
import sys
import time

from treadle import monkey

print("name=" + __name__)
print("argv=" + repr(sys.argv))
print("patched=" + ",".join(monkey.patched_modules()))
print("sleep_green=" + str(time.sleep is not monkey.get_original("time", "sleep")))
"""


def test_run_script_as_main_with_its_arguments(tmp_path: Path) -> None:
    script = write(tmp_path / "scripts" / "report.py", _REPORT)
    proc = run_python(["-m", "treadle", "run", str(script), "one", "--two", "-m", "3"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    got = values(proc.stdout.splitlines())
    assert got["name"] == "__main__"
    assert eval(got["argv"]) == [str(script), "one", "--two", "-m", "3"]
    assert sorted(got["patched"].split(",")) == PATCHED_MODULES
    assert got["sleep_green"] == "True"


def test_run_script_can_import_modules_beside_it(tmp_path: Path) -> None:
    write(tmp_path / "scripts" / "helper.py", "VALUE = 42\n")
    script = write(tmp_path / "scripts" / "main.py", "import helper\n\nprint('value=' + str(helper.VALUE))\n")
    proc = run_python(["-m", "treadle", "run", str(script)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert values(proc.stdout.splitlines())["value"] == "42"


def test_run_script_runs_green_code_that_uses_time_sleep(tmp_path: Path) -> None:
    """Under ``run``, a plain script's ``time.sleep`` in spawned tasks overlaps."""
    script = write(
        tmp_path / "sleepers.py",
        """
        import time

        import treadle

        start = time.monotonic()
        treadle.joinall([treadle.spawn(time.sleep, 0.3) for _ in range(5)])
        print("elapsed=" + str(time.monotonic() - start))
        """,
    )
    proc = run_python(["-m", "treadle", "run", str(script)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    elapsed = float(values(proc.stdout.splitlines())["elapsed"])
    assert 0.29 <= elapsed < 0.9, elapsed  # 1.5 s if the sleeps did not overlap


def test_run_script_exit_status_is_the_scripts(tmp_path: Path) -> None:
    script = write(tmp_path / "exits.py", "import sys\n\nsys.exit(5)\n")
    proc = run_python(["-m", "treadle", "run", str(script)], cwd=tmp_path)
    assert proc.returncode == 5, proc.stderr


@pytest.mark.parametrize("target", ["mypkg.tool", "mypkg"])
def test_run_module_as_main_with_its_arguments(tmp_path: Path, target: str) -> None:
    """``run -m pkg.tool args`` (a module) and ``run -m pkg args`` (a package's ``__main__``), from PYTHONPATH."""
    lib = tmp_path / "lib"
    write(lib / "mypkg" / "__init__.py", "")
    write(lib / "mypkg" / "tool.py", _REPORT)
    write(lib / "mypkg" / "__main__.py", _REPORT)
    proc = run_python(
        ["-m", "treadle", "run", "-m", target, "a", "-b", "c"], cwd=tmp_path, env={"PYTHONPATH": str(lib)}
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    got = values(proc.stdout.splitlines())
    assert got["name"] == "__main__"
    argv = eval(got["argv"])
    expected_file = "tool.py" if target == "mypkg.tool" else "__main__.py"
    assert argv[0] == str(lib / "mypkg" / expected_file), argv
    assert argv[1:] == ["a", "-b", "c"]
    assert sorted(got["patched"].split(",")) == PATCHED_MODULES
    assert got["sleep_green"] == "True"


def test_run_no_time_leaves_time_sleep_unpatched(tmp_path: Path) -> None:
    script = write(
        tmp_path / "report.py",
        _REPORT
        + """
import socket

import treadle.net.greensocket

print("time_patched=" + str(monkey.is_patched("time")))
print("socket_green=" + str(socket.socket is treadle.net.greensocket.socket))
""",
    )
    proc = run_python(["-m", "treadle", "run", "--no-time", str(script)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    got = values(proc.stdout.splitlines())
    assert got["sleep_green"] == "False"
    assert got["time_patched"] == "False"
    assert got["socket_green"] == "True"
    assert "time" not in got["patched"].split(",")


def test_run_no_socket_leaves_socket_unpatched(tmp_path: Path) -> None:
    script = write(
        tmp_path / "report.py",
        _REPORT + "\nimport socket\n\nprint('socket_module=' + socket.socket.__module__)\n",
    )
    proc = run_python(["-m", "treadle", "run", "--no-socket", str(script)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    got = values(proc.stdout.splitlines())
    assert got["socket_module"] == "socket"
    assert "socket" not in got["patched"].split(",")
    assert got["sleep_green"] == "True"


def test_run_missing_script_exits_2_with_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_script.py"
    proc = run_python(["-m", "treadle", "run", str(missing), "arg"], cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "no_such_script.py" in proc.stderr


@pytest.mark.parametrize("module", ["no_such_module_xyz", "no_such_pkg_xyz.sub"])
def test_run_missing_module_exits_2_with_one_line(tmp_path: Path, module: str) -> None:
    proc = run_python(["-m", "treadle", "run", "-m", module, "arg"], cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert module in proc.stderr


# -- seeds 001 and 002: time.sleep under patch_all -------------------------------------------------


def test_seed001_patched_time_sleep_interleaves_two_workers(tmp_path: Path) -> None:
    """Seed 001's work1/work2 with ``monkey.patch_all()``: ``time.sleep(random.random())`` switches."""
    lines = run_program(
        tmp_path,
        """
        from treadle import monkey

        monkey.patch_all()

        import random
        import time

        import treadle

        rng = random.Random(1)
        slept = []


        def coroutine_work(coroutine_name):
            for i in range(10):
                print(coroutine_name, i)
                seconds = rng.random() * 0.05
                slept.append(seconds)
                time.sleep(seconds)


        start = time.monotonic()
        treadle.joinall([treadle.spawn(coroutine_work, "work1"), treadle.spawn(coroutine_work, "work2")])
        print("elapsed", time.monotonic() - start, sum(slept))
        """,
    )
    *output, last = lines
    _, elapsed_s, total_s = last.split()
    elapsed, total = float(elapsed_s), float(total_s)
    work1 = [line for line in output if line.startswith("work1 ")]
    work2 = [line for line in output if line.startswith("work2 ")]
    assert work1 == [f"work1 {i}" for i in range(10)]
    assert work2 == [f"work2 {i}" for i in range(10)]
    assert len(output) == 20
    # Interleaved: both workers printed before either finished (unpatched, work1 0..9 came first).
    assert output.index("work2 0") < output.index("work1 9")
    assert output.index("work1 0") < output.index("work2 9")
    assert output != work1 + work2
    # The sleeps overlapped: the wall time is about the longer worker's, well below the sum.
    assert elapsed < 0.75 * total, (elapsed, total)


def test_seed002_eat_and_play_with_patched_time_sleep(tmp_path: Path) -> None:
    """Seed 002: ``from gevent import monkey, spawn; monkey.patch_all()``; eat sleeps 3 s, play 1 s (here 0.6, 0.2)."""
    lines = run_program(
        tmp_path,
        """
        from treadle import monkey, spawn

        monkey.patch_all()
        import time
        from threading import current_thread


        def eat():
            print("%s eat 1" % current_thread().name)
            time.sleep(0.6)
            print("%s eat 2" % current_thread().name)


        def play():
            print("%s play 1" % current_thread().name)
            time.sleep(0.2)
            print("%s play 2 " % current_thread().name)


        start = time.time()
        g1 = spawn(eat)
        g2 = spawn(play)

        print(current_thread().name)
        g1.join()
        g2.join()
        print("主", time.time() - start)
        """,
    )
    assert lines[0] == "MainThread"
    events = [line.split(maxsplit=1)[1].strip() for line in lines[1:-1]]
    assert events == ["eat 1", "play 1", "play 2", "eat 2"]
    label, elapsed = lines[-1].split()
    assert label == "主"
    assert 0.55 <= float(elapsed) <= 1.0, elapsed


# -- green select, poll and selectors ----------------------------------------------------------------

_TICKER = """
import time

import treadle

ticks = 0
running = True


def ticker():
    global ticks
    while running:
        ticks += 1
        time.sleep(0.01)


def stop_ticker(task):
    global running
    running = False
    task.join()
"""

_WAIT_FOR_READABLE = {
    "select": (
        "def ready(sock, timeout):\n"
        "    r, w, x = select.select([sock], [], [], timeout)\n"
        "    return [s is sock for s in r] + w + x\n"
    ),
    "poll": (
        "def ready(sock, timeout):\n"
        "    p = select.poll()\n"
        "    p.register(sock, select.POLLIN)\n"
        "    return [fd == sock.fileno() and bool(ev & select.POLLIN) for fd, ev in p.poll(timeout * 1000)]\n"
    ),
    "selectors": (
        "def ready(sock, timeout):\n"
        "    with selectors.DefaultSelector() as sel:\n"
        "        sel.register(sock, selectors.EVENT_READ, 'mine')\n"
        "        return [k.fileobj is sock and k.data == 'mine' and ev == selectors.EVENT_READ\n"
        "                for k, ev in sel.select(timeout)]\n"
    ),
}


@pytest.mark.parametrize("where", ["task", "main"])
@pytest.mark.parametrize("api", sorted(_WAIT_FOR_READABLE))
def test_green_readiness_wait_lets_other_tasks_run(tmp_path: Path, api: str, where: str) -> None:
    """A green task (or the main greenlet) waits for a socketpair to be readable while a task ticks; then a timeout."""
    run_waiter = (
        "treadle.joinall([treadle.spawn(writer), treadle.spawn(waiter)])"
        if where == "task"
        else "write_task = treadle.spawn(writer)\nwaiter()\nwrite_task.join()"
    )
    lines = run_program(
        tmp_path,
        "from treadle import monkey\n\nmonkey.patch_all()\nimport select\nimport selectors\nimport socket\n"
        + _TICKER
        + _WAIT_FOR_READABLE[api]
        + """
a, b = socket.socketpair()


def writer():
    time.sleep(0.2)
    b.send(b"x")


def waiter():
    t0, n0 = time.monotonic(), ticks
    got = ready(a, 5)
    print("ready=" + str(got))
    print("ready_wait=" + str(time.monotonic() - t0))
    print("ready_ticks=" + str(ticks - n0))
    print("data=" + repr(a.recv(10)))
    t0, n0 = time.monotonic(), ticks
    got = ready(a, 0.15)
    print("timeout=" + str(got))
    print("timeout_wait=" + str(time.monotonic() - t0))
    print("timeout_ticks=" + str(ticks - n0))
    t0 = time.monotonic()
    print("zero=" + str(ready(a, 0)))
    print("zero_wait=" + str(time.monotonic() - t0))


tick = treadle.spawn(ticker)
"""
        + run_waiter
        + """
stop_ticker(tick)
a.close()
b.close()
""",
    )
    got = values(lines)
    assert got["ready"] == "[True]"
    assert 0.15 <= float(got["ready_wait"]) < 2.0
    assert int(got["ready_ticks"]) >= 5, got  # about 20 if the wait let the ticker run
    assert got["data"] == "b'x'"
    assert got["timeout"] == "[]"
    assert 0.14 <= float(got["timeout_wait"]) < 1.0, got
    assert int(got["timeout_ticks"]) >= 4, got
    assert got["zero"] == "[]"
    assert float(got["zero_wait"]) < 0.1


def test_green_select_on_writable_and_on_several_sockets(tmp_path: Path) -> None:
    """select.select with a writable socket returns at once; with two readers, returns the ready one."""
    lines = run_program(
        tmp_path,
        "from treadle import monkey\n\nmonkey.patch_all()\nimport select\nimport socket\n"
        + _TICKER
        + """
a, b = socket.socketpair()
c, d = socket.socketpair()
r, w, x = select.select([], [a], [], 5)
print("writable=" + str(w == [a] and r == [] and x == []))


def writer():
    time.sleep(0.1)
    d.send(b"y")


def waiter():
    n0 = ticks
    r, w, x = select.select([a, c], [], [], 5)
    print("readers=" + str(r == [c] and w == [] and x == []))
    print("ticks=" + str(ticks - n0))


tick = treadle.spawn(ticker)
treadle.joinall([treadle.spawn(writer), treadle.spawn(waiter)])
stop_ticker(tick)
for s in (a, b, c, d):
    s.close()
""",
    )
    got = values(lines)
    assert got["writable"] == "True"
    assert got["readers"] == "True"
    assert int(got["ticks"]) >= 3


# -- subprocess and os.waitpid ---------------------------------------------------------------------


def test_subprocess_run_in_two_tasks_overlaps(tmp_path: Path) -> None:
    lines = run_program(
        tmp_path,
        """
        from treadle import monkey

        monkey.patch_all()
        import subprocess
        import time

        import treadle

        start = time.monotonic()
        tasks = [treadle.spawn(subprocess.run, ["sleep", "0.3"]) for _ in range(2)]
        treadle.joinall(tasks, raise_error=True)
        print("elapsed=" + str(time.monotonic() - start))
        print("codes=" + str([t.get().returncode for t in tasks]))
        """,
    )
    got = values(lines)
    assert got["codes"] == "[0, 0]"
    assert 0.29 <= float(got["elapsed"]) < 0.55, got  # 0.6 s if they ran one after the other


@pytest.mark.parametrize("call", ["check_output", "communicate", "run_timeout"])
def test_subprocess_reading_one_pipe_in_two_tasks_overlaps(tmp_path: Path, call: str) -> None:
    """``check_output`` / ``communicate()`` with only stdout piped (no timeout), and ``run(timeout=)``, in two tasks."""
    body = {
        "check_output": "return subprocess.check_output(CMD)",
        "communicate": "return subprocess.Popen(CMD, stdout=subprocess.PIPE).communicate()[0]",
        "run_timeout": "return subprocess.run(CMD, stdout=subprocess.PIPE, timeout=10).stdout",
    }[call]
    lines = run_program(
        tmp_path,
        f"""
        from treadle import monkey

        monkey.patch_all()
        import subprocess
        import time

        import treadle

        CMD = ["sh", "-c", "sleep 0.3; echo hi"]


        def call():
            {body}


        start = time.monotonic()
        tasks = [treadle.spawn(call) for _ in range(2)]
        treadle.joinall(tasks, raise_error=True)
        print("elapsed=" + str(time.monotonic() - start))
        print("outputs=" + str([t.get() for t in tasks]))
        """,
    )
    got = values(lines)
    assert got["outputs"] == "[b'hi\\n', b'hi\\n']"
    assert 0.29 <= float(got["elapsed"]) < 0.55, got  # 0.6 s if the reads blocked the thread


def test_subprocess_communicate_with_input_and_timeout(tmp_path: Path) -> None:
    """communicate() feeds 1 MB to cat and reads it back while another task ticks; a timeout raises TimeoutExpired."""
    lines = run_program(
        tmp_path,
        "from treadle import monkey\n\nmonkey.patch_all()\nimport subprocess\n"
        + _TICKER
        + """

def echo():
    data = bytes(range(256)) * 4096
    n0 = ticks
    proc = subprocess.Popen(
        ["sh", "-c", "sleep 0.2; cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = proc.communicate(input=data, timeout=10)
    print("echo=" + str(out == data) + " " + repr(err) + " " + str(proc.returncode))
    print("echo_ticks=" + str(ticks - n0))


def times_out():
    proc = subprocess.Popen(["sleep", "5"], stdout=subprocess.PIPE)
    t0, n0 = time.monotonic(), ticks
    try:
        proc.communicate(timeout=0.2)
    except subprocess.TimeoutExpired as exc:
        print("expired=" + str(exc.timeout))
    print("expired_wait=" + str(time.monotonic() - t0))
    print("expired_ticks=" + str(ticks - n0))
    proc.kill()
    out, _ = proc.communicate(timeout=10)
    print("killed=" + str(proc.returncode) + " " + repr(out))
    t0 = time.monotonic()
    try:
        subprocess.run(["sleep", "5"], timeout=0.2)
    except subprocess.TimeoutExpired as exc:
        print("run_expired=" + str(exc.timeout))
    print("run_wait=" + str(time.monotonic() - t0))


def text_mode():
    result = subprocess.run(["tr", "a-z", "A-Z"], input="hello\\n", capture_output=True, text=True, timeout=10)
    print("text=" + repr(result.stdout) + " " + str(result.returncode))


tick = treadle.spawn(ticker)
treadle.joinall([treadle.spawn(echo), treadle.spawn(times_out), treadle.spawn(text_mode)], raise_error=True)
stop_ticker(tick)
""",
    )
    got = values(lines)
    assert got["echo"] == "True b'' 0"
    assert int(got["echo_ticks"]) >= 5, got
    assert got["expired"] == "0.2"
    assert 0.19 <= float(got["expired_wait"]) < 1.5, got
    assert int(got["expired_ticks"]) >= 5, got
    assert got["killed"] == "-9 b''"
    assert 0.15 <= float(got["run_expired"]) <= 0.2, got  # the time left when it expired, as without patching
    assert 0.19 <= float(got["run_wait"]) < 1.5, got  # run() kills the child on timeout, without waiting 5 s
    assert got["text"] == "'HELLO\\n' 0"


def test_popen_wait_timeout_raises_while_other_tasks_run(tmp_path: Path) -> None:
    lines = run_program(
        tmp_path,
        "from treadle import monkey\n\nmonkey.patch_all()\nimport subprocess\n"
        + _TICKER
        + """

def waits():
    proc = subprocess.Popen(["sleep", "5"])
    t0, n0 = time.monotonic(), ticks
    try:
        proc.wait(timeout=0.3)
    except subprocess.TimeoutExpired as exc:
        print("expired=" + str(exc.timeout) + " " + str(exc.cmd))
    print("wait=" + str(time.monotonic() - t0))
    print("ticks=" + str(ticks - n0))
    print("poll=" + str(proc.poll()))
    proc.terminate()
    print("code=" + str(proc.wait(timeout=10)))
    quick = subprocess.Popen(["sh", "-c", "sleep 0.1; exit 4"])
    print("quick=" + str(quick.wait(timeout=10)))


tick = treadle.spawn(ticker)
treadle.spawn(waits).get()
stop_ticker(tick)
""",
    )
    got = values(lines)
    assert got["expired"] == "0.3 ['sleep', '5']"
    assert 0.29 <= float(got["wait"]) < 1.5, got
    assert int(got["ticks"]) >= 10, got  # about 30 if the wait let the ticker run
    assert got["poll"] == "None"
    assert got["code"] == "-15"
    assert got["quick"] == "4"


@pytest.mark.parametrize("which", ["pid", "any"])
def test_os_waitpid_blocks_only_the_calling_task(tmp_path: Path, which: str) -> None:
    """``os.waitpid(pid, 0)`` (and ``os.waitpid(-1, 0)``) on a child that runs 0.3 s, while a ticker runs."""
    lines = run_program(
        tmp_path,
        "from treadle import monkey\n\nmonkey.patch_all()\nimport os\n"
        + _TICKER
        + f"""

def reap():
    pid = os.posix_spawnp("sh", ["sh", "-c", "sleep 0.3; exit 3"], os.environ)
    t0, n0 = time.monotonic(), ticks
    got_pid, status = os.waitpid({"pid" if which == "pid" else "-1"}, 0)
    print("same=" + str(got_pid == pid))
    print("code=" + str(os.waitstatus_to_exitcode(status)))
    print("wait=" + str(time.monotonic() - t0))
    print("ticks=" + str(ticks - n0))
    later = os.posix_spawnp("sleep", ["sleep", "0.2"], os.environ)
    print("nohang=" + str(os.waitpid(later, os.WNOHANG)))
    print("later=" + str(os.waitpid(later, 0) == (later, 0)))


tick = treadle.spawn(ticker)
treadle.spawn(reap).get()
stop_ticker(tick)
""",
    )
    got = values(lines)
    assert got["same"] == "True"
    assert got["code"] == "3"
    assert 0.29 <= float(got["wait"]) < 1.5, got
    assert int(got["ticks"]) >= 10, got
    assert got["nohang"] == "(0, 0)"
    assert got["later"] == "True"


# -- os.fork after the loop has run ----------------------------------------------------------------

_FORK = """
from treadle import monkey

monkey.patch_all()
import os
import socket
import time

import treadle

ticks = 0
running = True


def ticker():
    global ticks
    while running:
        ticks += 1
        time.sleep(0.01)


tick = treadle.spawn(ticker)
time.sleep(0.05)  # the loop has run (in the hub greenlet), and runs the ticker
parent_end, child_end = socket.socketpair()


def in_child():
    # The child: the parent's loop state, renewed. Sleep, a round trip inside
    # the child, and one with the parent, all green.
    parent_end.close()
    treadle.sleep(0.01)
    time.sleep(0.01)
    a, b = socket.socketpair()

    def echo():
        b.sendall(b.recv(100).upper())

    echo_task = treadle.spawn(echo)
    a.sendall(b"inner")
    inner = a.recv(100)
    echo_task.join()
    child_end.sendall(b"ping")
    outer = child_end.recv(100)
    ok = inner == b"INNER" and outer == b"pong"
    os._exit(0 if ok else 1)


def fork_and_wait():
    pid = os.fork()
    if pid == 0:
        try:
            in_child()
        finally:
            os._exit(2)
    child_end.close()
    msg = parent_end.recv(100)
    parent_end.sendall(b"pong")
    n0 = ticks
    _, status = os.waitpid(pid, 0)
    print("message=" + repr(msg))
    print("child=" + str(os.waitstatus_to_exitcode(status)))
    time.sleep(0.05)
    print("ticking=" + str(ticks > n0))
"""


@pytest.mark.parametrize("where", ["main", "task"])
def test_fork_after_the_loop_ran_child_stays_green_and_parent_continues(tmp_path: Path, where: str) -> None:
    """``os.fork()`` from the main greenlet or a green task, once the loop has run and while a task ticks."""
    call = "fork_and_wait()" if where == "main" else "treadle.spawn(fork_and_wait).get()"
    lines = run_program(
        tmp_path,
        _FORK
        + f"""
{call}
running = False
tick.join()
parent_end.close()
print("parent=done")
""",
    )
    got = values(lines)
    assert got["message"] == "b'ping'"
    assert got["child"] == "0"
    assert got["ticking"] == "True"
    assert got["parent"] == "done"
