"""`make up` / `make down`: local services plus `airflow standalone` with this project's DAGs.

`airflow standalone` does not stop its children on SIGTERM, so it is started in its own process
group (session) and `down` signals the whole group by its id, then the services by their PIDs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tools import airflow_home

PROJECT_DIR = airflow_home.PROJECT_DIR
STATE_DIR = PROJECT_DIR / ".local"
PID_FILE = STATE_DIR / "pids" / "airflow-standalone.pid"
LOG_FILE = STATE_DIR / "logs" / "airflow-standalone.log"
UI = "http://localhost:8080"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def up() -> int:
    env = {**os.environ, **airflow_home.apply()}
    # standalone starts its components as `airflow ...` from PATH: use this virtualenv's.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    python = sys.executable
    subprocess.run([python, "-m", "tools.services", "up", "--state-dir", str(STATE_DIR)], env=env, check=True)
    subprocess.run([python, "-m", "airflow", "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    airflow_home.use_wal()
    subprocess.run([python, "-m", "tools.load_settings"], env=env, check=True)
    if PID_FILE.exists() and _alive(int(PID_FILE.read_text())):
        print(f"airflow standalone already running (pid {PID_FILE.read_text().strip()})")
    else:
        LOG_FILE.parent.mkdir(parents=True, exist_ok=True)
        PID_FILE.parent.mkdir(parents=True, exist_ok=True)
        with open(LOG_FILE, "ab") as log:
            process = subprocess.Popen(
                [python, "-m", "airflow", "standalone"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        PID_FILE.write_text(str(process.pid))
        print(f"started airflow standalone (pid {process.pid}); log: {LOG_FILE}")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{UI}/api/v2/monitor/health", timeout=3) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(2)
    else:
        print(f"Airflow did not answer on {UI} within 4 minutes; see {LOG_FILE}")
        return 1
    passwords = Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
    print(f"\nAirflow UI: {UI}  (user admin; password in {passwords})")
    print("Stop everything with: make down")
    return 0


def down() -> int:
    env = {**os.environ, **airflow_home.apply()}
    if PID_FILE.exists():
        pid = int(PID_FILE.read_text())
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                break
            for _ in range(50):
                try:
                    os.killpg(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.2)
        PID_FILE.unlink(missing_ok=True)
        print("stopped airflow standalone")
    subprocess.run(
        [sys.executable, "-m", "tools.services", "down", "--state-dir", str(STATE_DIR)], env=env, check=False
    )
    return 0


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "up"
    sys.exit({"up": up, "down": down}[command]())
