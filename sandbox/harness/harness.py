"""Kelpie's harness for Python tools, run inside the sandbox.

Usage: python harness.py CALL_JSON RESULT_FD

CALL_JSON names the call: {"source": path, "entry": name, "script": bool,
"arguments": {...}}. The harness loads the source, calls the entry
function with the arguments as keyword arguments (or runs the source as
__main__ when "script" is set), and writes newline-delimited JSON frames to
RESULT_FD: {"event": "start"} first, then one {"event": "result", ...}.
stdout and stderr belong to the tool; the result never passes through them.
"""

import asyncio
import builtins
import inspect
import json
import os
import sys
import traceback


def send(fd, frame):
    data = (json.dumps(frame, ensure_ascii=False, default=str) + "\n").encode("utf-8", "replace")
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def failure(exc, tb=None):
    frame = {
        "event": "result",
        "ok": False,
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(type(exc), exc, tb)),
    }
    errno = getattr(exc, "errno", None)
    if isinstance(errno, int):
        frame["errno"] = errno
    return frame


async def wait_for(awaitable):
    return await awaitable


def close_namespace_fds(keep):
    # bwrap leaves the user namespace it joined open; the tool has no use
    # for it.
    for fd in range(keep + 1, 16):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("user:["):
                os.close(fd)
        except OSError:
            pass


def main():
    call_path, fd = sys.argv[1], int(sys.argv[2])
    os.set_inheritable(fd, False)
    close_namespace_fds(fd)
    main_pid = os.getpid()
    with open(call_path, encoding="utf-8") as f:
        call = json.load(f)
    source = call["source"]
    sys.argv = [source]
    sys.path[0] = os.getcwd()
    send(fd, {"event": "start"})

    script = call.get("script", False)
    frame = None
    try:
        with open(source, encoding="utf-8") as f:
            code = compile(f.read(), source, "exec")
        namespace = {
            "__name__": "__main__" if script else "__kelpie_tool__",
            "__file__": source,
            "__builtins__": builtins,
        }
        exec(code, namespace)
        if script:
            frame = {"event": "result", "ok": True}
        else:
            entry = call["entry"]
            fn = namespace.get(entry)
            if not callable(fn):
                raise NameError(f"the tool's source defines no function named {entry!r}")
            value = fn(**call.get("arguments", {}))
            if inspect.isawaitable(value):
                value = asyncio.run(wait_for(value))
            if isinstance(value, str):
                frame = {"event": "result", "ok": True, "text": value}
            else:
                frame = {"event": "result", "ok": True, "value": value}
    except SystemExit as exc:
        if script and exc.code in (None, 0):
            frame = {"event": "result", "ok": True}
        else:
            frame = failure(exc)
            frame["message"] = f"the program called exit({exc.code!r})"
    except BaseException as exc:
        tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
        frame = failure(exc, tb)

    if os.getpid() != main_pid:
        # A process the tool forked reached the end of the tool: only the
        # harness's own process reports.
        os._exit(0)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    try:
        send(fd, frame)
    except (TypeError, ValueError) as exc:
        send(fd, {
            "event": "result",
            "ok": False,
            "type": "TypeError",
            "message": f"the tool's return value cannot be encoded as JSON: {exc}",
        })
    # Exit now: threads or atexit handlers the tool left behind do not
    # hold the call open.
    os._exit(0 if frame.get("ok") else 1)


main()
