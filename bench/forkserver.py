"""A warm parent that forks one fresh child process per benchmark case.

Importing pandas, pyarrow, DuckDB and pandera costs seconds per interpreter (more on a busy
machine), and ``airflow.sdk`` even more. The server imports a fixed list of modules once and never
does any work itself (no thread pools, no connections), then forks a child per request: each case
still runs alone in its own process, starting from the same state a task process has after its
imports, and its CPU time, peak RSS and wall time are its own.

Protocol (one JSON object per line): request ``{"argv": [...], "out": path, "err": path,
"timeout": seconds}`` on stdin; reply ``{"rc": int, "timed_out": bool, "elapsed_s": float}`` on
stdout. The child runs ``bench.case.main(argv)`` with its stdout/stderr in ``out``/``err``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import sys
import time
import traceback


def _child(request: dict) -> None:
    out = os.open(request["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open(request["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(out, 1)
    os.dup2(err, 2)
    code = 0
    try:
        os.setpgid(0, 0)  # its own group, so a timeout can stop everything it started
        from bench.case import main

        main(request["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve(preload: list[str]) -> None:
    for name in preload:
        importlib.import_module(name)
    print(json.dumps({"ready": True, "preloaded": preload}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _child(request)
        deadline = started + float(request.get("timeout", 3600))
        timed_out = False
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline and not timed_out:
                timed_out = True
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
            time.sleep(0.02)
        reply = {
            "rc": os.waitstatus_to_exitcode(status),
            "timed_out": timed_out,
            "elapsed_s": time.monotonic() - started,
        }
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    serve([m for m in sys.argv[1:] if m])
