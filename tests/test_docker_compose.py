"""The docker-compose stack agrees with airflow_settings.yaml, the connection/pool/variable contract.

No Docker engine runs where the tests run, so the stack is checked by parsing it: docker-compose.yaml,
the Dockerfile and the SFTP server's configuration under docker/sftp/. Airflow is not imported.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path, PurePosixPath

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
SETTINGS_FILE = ROOT / "airflow_settings.yaml"
DOCKERFILE = ROOT / "Dockerfile"
LOCK_FILE = ROOT / "requirements.lock"
SFTP_DIR = ROOT / "docker" / "sftp"

AIRFLOW_HOME = PurePosixPath("/opt/airflow")
# The services that run Airflow code and so need the contract's environment and volumes.
AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
)
# Connection id -> the neighbour service it points at, and that service's image.
NEIGHBOURS = {
    "sftp_landing": ("sftp", "atmoz/sftp"),
    "smtp_default": ("smtp", "axllent/mailpit"),
    "clamav": ("clamav", "clamav/clamav"),
}
PIPELINE_ACCOUNT = "pipeline"


# --- loading ----------------------------------------------------------------------------------


def _load_yaml(path: Path) -> dict:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


COMPOSE = _load_yaml(COMPOSE_FILE)
SETTINGS = _load_yaml(SETTINGS_FILE)["airflow"]
SERVICES: dict = COMPOSE["services"]
CONNECTIONS = {conn["conn_id"]: conn for conn in SETTINGS["connections"]}
VARIABLES = {var["variable_name"]: var["variable_value"] for var in SETTINGS["variables"]}
POOLS = {pool["pool_name"]: pool for pool in SETTINGS["pools"]}
MANUFACTURER_CODES = [entry["code"] for entry in json.loads(VARIABLES["manufacturers"])]


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


COMMON_ENV = _environment(COMPOSE["x-airflow-common"])


class Mount:
    def __init__(self, source: str, target: str, read_only: bool, kind: str) -> None:
        self.source = source
        self.target = PurePosixPath(target)
        self.read_only = read_only
        self.kind = kind  # "bind" or "volume"

    def __repr__(self) -> str:
        return f"Mount({self.source!r} -> {self.target}, ro={self.read_only})"


def _mounts(service: dict) -> list[Mount]:
    mounts = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, str):
            source, target, *options = entry.split(":")
            read_only = "ro" in (options[0].split(",") if options else [])
            kind = "bind" if source.startswith((".", "/", "~", "$")) else "volume"
        else:
            source, target = entry.get("source", ""), entry["target"]
            read_only = bool(entry.get("read_only", False))
            kind = entry["type"]
        mounts.append(Mount(source, target, read_only, kind))
    return mounts


def _mount_of(service: dict, path: PurePosixPath) -> Mount | None:
    """The mount that holds `path` in the container (the deepest one)."""
    holding = [m for m in _mounts(service) if path == m.target or m.target in path.parents]
    return max(holding, key=lambda m: len(m.target.parts), default=None)


def _host_path(source: str) -> Path:
    return (ROOT / source).resolve()


def _container_ports(service: dict) -> set[int]:
    ports = {int(str(port).split("/")[0]) for port in service.get("expose") or []}
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            ports.add(int(port["target"]))
        else:
            ports.add(int(str(port).split(":")[-1].split("/")[0]))
    return ports


def _parse_connection(value: str) -> dict:
    """An AIRFLOW_CONN_* value in Airflow's JSON form."""
    assert value.lstrip().startswith("{"), "connections are given in Airflow's JSON form"
    conn = json.loads(value)
    extra = conn.get("extra") or {}
    conn["extra"] = json.loads(extra) if isinstance(extra, str) else extra
    return conn


def _users_conf() -> dict[str, dict]:
    accounts = {}
    for line in (SFTP_DIR / "users.conf").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        user, password, uid, gid, dirs = line.split(":")
        accounts[user] = {
            "password": password,
            "uid": uid,
            "gid": gid,
            "dirs": [d for d in dirs.split(",") if d],
        }
    return accounts


def _sshd_config() -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """The global options and the options of each `Match User <name>` block (keywords lower-case)."""
    global_options: dict[str, str] = {}
    matches: dict[str, dict[str, str]] = {}
    current = global_options
    for raw in (SFTP_DIR / "sshd_config").read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        keyword, _, value = line.partition(" ")
        keyword, value = keyword.lower(), value.strip()
        if keyword == "match":
            criterion, _, users = value.partition(" ")
            assert criterion.lower() == "user", f"unexpected Match criterion: {raw!r}"
            current = {}
            for user in users.split(","):
                matches[user.strip()] = current
        else:
            current.setdefault(keyword, value)
    return global_options, matches


def _effective_sshd(user: str) -> dict[str, str]:
    global_options, matches = _sshd_config()
    return {**global_options, **matches.get(user, {})}


# --- the compose file --------------------------------------------------------------------------


def test_compose_uses_modern_syntax_and_has_every_service():
    assert "version" not in COMPOSE, "the top-level `version` key is obsolete"
    expected = {"postgres", "redis", "airflow-init", *AIRFLOW_SERVICES}
    expected |= {service for service, _ in NEIGHBOURS.values()}
    assert expected <= set(SERVICES), f"missing services: {sorted(expected - set(SERVICES))}"


def test_named_volumes_are_declared():
    declared = set(COMPOSE.get("volumes") or {})
    for name, service in SERVICES.items():
        for mount in _mounts(service):
            if mount.kind == "volume":
                assert mount.source in declared, f"{name}: undeclared volume {mount.source}"


def test_services_depend_on_existing_services_with_valid_conditions():
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in SERVICES.items():
        for dependency, spec in (service.get("depends_on") or {}).items():
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
            assert spec["condition"] in conditions
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], f"{dependency} has no healthcheck"


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_airflow_service_builds_the_project_image(name):
    service = SERVICES[name]
    build = service["build"]
    context = build if isinstance(build, str) else build.get("context", ".")
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (ROOT / context).resolve() == ROOT
    assert (ROOT / context / dockerfile).resolve() == DOCKERFILE
    assert service["image"] == COMPOSE["x-airflow-common"]["image"]


def test_dockerfile_extends_the_official_image_with_the_lock():
    instructions = [
        line.strip()
        for line in re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8")).splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    lock = LOCK_FILE.read_text(encoding="utf-8")
    airflow_pin = re.search(r"^apache-airflow==(\S+)$", lock, re.MULTILINE).group(1)
    lock_python = re.search(r"--python-version\s+(\S+)", lock).group(1)

    base = [line for line in instructions if line.upper().startswith("FROM ")]
    assert base == [f"FROM apache/airflow:{airflow_pin}-python{lock_python}"]

    copied = [line.split()[1:] for line in instructions if line.upper().startswith("COPY ")]
    lock_destination = next(args[-1] for args in copied if args[0] == "requirements.lock")
    runs = " ".join(line for line in instructions if line.upper().startswith("RUN "))
    install = re.search(r"pip install ([^&;]*)", runs)
    assert install, "the image must pip install the lock"
    options = install.group(1).split()
    assert "--no-cache-dir" in options
    assert "--no-deps" in options, "the lock is complete: no resolver run"
    assert options[options.index("-r") + 1] == lock_destination


# --- the contract: connections, variables, pools -----------------------------------------------


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_airflow_service_gets_the_whole_contract_environment(name):
    env = _environment(SERVICES[name])
    for key, value in COMMON_ENV.items():
        if key.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_")) or key == "PYTHONPATH":
            assert env.get(key) == value, f"{name}: {key} differs from x-airflow-common"


@pytest.mark.parametrize("conn_id", sorted(CONNECTIONS))
def test_connection_is_provided_to_airflow(conn_id):
    expected = CONNECTIONS[conn_id]
    key = f"AIRFLOW_CONN_{conn_id.upper()}"
    assert key in COMMON_ENV, f"{key} missing from x-airflow-common.environment"
    conn = _parse_connection(COMMON_ENV[key])

    assert conn["conn_type"] == expected["conn_type"]
    assert conn_id in NEIGHBOURS, f"which compose service does {conn_id} point at? (NEIGHBOURS)"
    neighbour, image = NEIGHBOURS[conn_id]
    assert conn["host"] == neighbour, f"{conn_id} must point at the `{neighbour}` service"
    assert SERVICES[neighbour]["image"].split(":")[0] == image
    assert int(conn["port"]) in _container_ports(SERVICES[neighbour]), (
        f"`{neighbour}` does not listen on port {conn['port']}"
    )
    if "conn_login" in expected:
        assert conn.get("login") == expected["conn_login"]

    extra = conn["extra"]
    for name, value in (expected.get("conn_extra") or {}).items():
        assert name in extra, f"{conn_id}: extra {name!r} missing"
        if isinstance(value, str) and "${PROJECT_DIR}" in value:
            continue  # a path of the embedded set-up; the container path is checked below
        assert extra[name] == value, f"{conn_id}: extra {name!r} differs"


def test_sftp_key_file_is_the_mounted_pipeline_key():
    key_file = PurePosixPath(_parse_connection(COMMON_ENV["AIRFLOW_CONN_SFTP_LANDING"])["extra"]["key_file"])
    for name in AIRFLOW_SERVICES:
        mount = _mount_of(SERVICES[name], key_file)
        assert mount is not None and mount.target == key_file, f"{name}: key not mounted"
        assert mount.kind == "bind" and mount.read_only
        assert _host_path(mount.source) == SFTP_DIR / "keys" / f"{PIPELINE_ACCOUNT}_ed25519"


@pytest.mark.parametrize("name", sorted(VARIABLES))
def test_variable_is_provided_to_airflow(name):
    key = f"AIRFLOW_VAR_{name.upper()}"
    assert key in COMMON_ENV, f"{key} missing from x-airflow-common.environment"
    value, expected = COMMON_ENV[key], VARIABLES[name]
    if name == "manufacturers":
        assert json.loads(value) == json.loads(expected)
    elif "${PROJECT_DIR}" in expected:
        # A path: the embedded set-up's is under the project, the stack's on the data volume.
        path = PurePosixPath(value)
        assert path.is_absolute()
        assert path.name == PurePosixPath(expected).name
    else:
        assert value == expected


@pytest.mark.parametrize("name", sorted(POOLS))
def test_pool_is_created_by_airflow_init(name):
    command = SERVICES["airflow-init"]["command"]
    script = command if isinstance(command, str) else "\n".join(command)
    slots = POOLS[name]["pool_slot"]
    assert re.search(rf"airflow pools set {re.escape(name)} {slots} ", script), (
        f"airflow-init must run `airflow pools set {name} {slots} ...`"
    )


def test_warehouse_pool_has_one_slot():
    assert POOLS["warehouse"]["pool_slot"] == 1


# --- volumes of the Airflow services -----------------------------------------------------------


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
@pytest.mark.parametrize("folder", ["dags", "include", "plugins", "tools"])
def test_project_code_is_mounted(name, folder):
    mount = _mount_of(SERVICES[name], AIRFLOW_HOME / folder)
    assert mount is not None and mount.target == AIRFLOW_HOME / folder, f"{name}: no ./{folder}"
    assert _host_path(mount.source) == ROOT / folder


def test_include_is_importable():
    assert str(AIRFLOW_HOME) in COMMON_ENV["PYTHONPATH"].split(":")


def test_warehouse_and_archive_share_one_volume_across_airflow_services():
    paths = [PurePosixPath(COMMON_ENV[f"AIRFLOW_VAR_{v.upper()}"]) for v in ("warehouse_path", "archive_path")]
    sources = set()
    for name in AIRFLOW_SERVICES:
        for path in paths:
            mount = _mount_of(SERVICES[name], path)
            assert mount is not None, f"{name}: {path} is on no volume"
            assert mount.kind == "volume" and not mount.read_only, f"{name}: {mount}"
            sources.add((mount.source, mount.target))
    assert len(sources) == 1, f"the warehouse and archive must share one volume: {sources}"


# --- the SFTP landing server -------------------------------------------------------------------


def test_sftp_server_configuration_is_mounted():
    mounts = {m.target: m for m in _mounts(SERVICES["sftp"])}
    expected = {
        "/etc/sftp/users.conf": SFTP_DIR / "users.conf",
        "/etc/ssh/sshd_config": SFTP_DIR / "sshd_config",
    }
    for target, source in expected.items():
        mount = mounts[PurePosixPath(target)]
        assert _host_path(mount.source) == source and mount.read_only
    scripts = [m for m in mounts.values() if m.target.parent == PurePosixPath("/etc/sftp.d")]
    assert scripts, "landing-layout.sh must run at start (/etc/sftp.d/)"
    for mount in scripts:
        assert os.access(_host_path(mount.source), os.X_OK), f"{mount.source} is not executable"


@pytest.mark.reliability(
    "Isolation and secrets",
    "docker-compose SFTP server allowing passwords, shells or root",
    "sshd_config is key-only, internal-sftp, chrooted, no root; no account has a password",
)
def test_sftp_is_key_only_and_sftp_only():
    global_options, _ = _sshd_config()
    assert global_options["passwordauthentication"] == "no"
    assert global_options["kbdinteractiveauthentication"] == "no"
    assert global_options["authenticationmethods"] == "publickey"
    assert global_options["permitrootlogin"] == "no"
    assert global_options["forcecommand"].startswith("internal-sftp")
    assert global_options["chrootdirectory"] == "%h"
    for user, account in _users_conf().items():
        assert account["password"] == "", f"{user} must have no password (key only)"


def test_every_sftp_account_has_a_public_key_mounted():
    mounts = _mounts(SERVICES["sftp"])
    for user in _users_conf():
        keys = [m for m in mounts if m.target.parent == PurePosixPath(f"/home/{user}/.ssh/keys")]
        assert len(keys) == 1, f"{user}: expected one public key"
        source = _host_path(keys[0].source)
        assert source.parent == SFTP_DIR / "keys" and source.suffix == ".pub"


def _inbox_volume(user: str, code: str) -> str:
    mount = _mount_of(SERVICES["sftp"], PurePosixPath(f"/home/{user}/recalls/{code}"))
    assert mount is not None and mount.kind == "volume", f"{user}: /recalls/{code} is no volume"
    assert mount.target == PurePosixPath(f"/home/{user}/recalls/{code}")
    return mount.source


@pytest.mark.reliability(
    "Isolation and secrets",
    "docker-compose manufacturer account seeing another manufacturer's inbox",
    "each manufacturer is chrooted with only its own inbox volume mounted",
)
@pytest.mark.parametrize("code", MANUFACTURER_CODES)
def test_manufacturer_has_an_account_jailed_with_its_own_inbox(code):
    user = code.lower()
    accounts = _users_conf()
    assert user in accounts, f"no SFTP account for {code}"
    assert accounts[user]["dirs"] == [f"recalls/{code}"], f"{user} must see only its inbox"

    # The jail and the start directory.
    options = _effective_sshd(user)
    assert options["chrootdirectory"] in ("%h", f"/home/{user}")
    force = options["forcecommand"].split()
    assert force[0] == "internal-sftp"
    assert force[force.index("-d") + 1] == f"/recalls/{code}"

    # The inbox is one volume that the pipeline's jail mounts at the same path ...
    volume = _inbox_volume(user, code)
    assert _inbox_volume(PIPELINE_ACCOUNT, code) == volume
    # ... and that no other account's jail mounts.
    for mount in _mounts(SERVICES["sftp"]):
        if mount.source == volume:
            owner = mount.target.parts[2]
            assert owner in (user, PIPELINE_ACCOUNT), f"{owner} can see {code}'s inbox"
    # Nothing else is mounted into the manufacturer's jail but its inbox and its public key.
    jail = PurePosixPath(f"/home/{user}")
    for mount in _mounts(SERVICES["sftp"]):
        if jail in mount.target.parents:
            assert mount.target == jail / "recalls" / code or mount.target.parent == jail / ".ssh/keys"


@pytest.mark.reliability(
    "Isolation and secrets",
    "two manufacturers sharing one Unix account",
    "every SFTP account has its own uid",
)
def test_manufacturer_accounts_are_distinct_and_share_the_pipeline_group():
    accounts = _users_conf()
    uids = [account["uid"] for account in accounts.values()]
    assert len(set(uids)) == len(uids)
    assert {account["gid"] for account in accounts.values()} == {accounts[PIPELINE_ACCOUNT]["gid"]}
    assert set(accounts) == {PIPELINE_ACCOUNT, *(code.lower() for code in MANUFACTURER_CODES)}


@pytest.mark.reliability(
    "Isolation and secrets",
    "DAGs sharing a manufacturer's SFTP login",
    "the DAGs use the separate pipeline service account",
)
def test_pipeline_account_sees_every_inbox_and_the_mot_deltas():
    account = _users_conf()[PIPELINE_ACCOUNT]
    assert CONNECTIONS["sftp_landing"]["conn_login"] == PIPELINE_ACCOUNT
    assert set(account["dirs"]) == {f"recalls/{code}" for code in MANUFACTURER_CODES} | {"mot/delta"}
    assert _effective_sshd(PIPELINE_ACCOUNT)["chrootdirectory"] in ("%h", f"/home/{PIPELINE_ACCOUNT}")
    mot = _mount_of(SERVICES["sftp"], PurePosixPath(f"/home/{PIPELINE_ACCOUNT}/mot/delta"))
    assert mot is not None and mot.kind == "volume"


def test_generated_keys_are_git_ignored_and_documented():
    ignored = (SFTP_DIR / ".gitignore").read_text(encoding="utf-8").split()
    assert any(pattern.strip("/") == "keys" for pattern in ignored)
    readme = (SFTP_DIR / "README.md").read_text(encoding="utf-8")
    assert "ssh-keygen" in readme
    for path in SFTP_DIR.iterdir():
        if path.is_file():
            assert "PRIVATE KEY-----" not in path.read_text(encoding="utf-8"), path


# --- the neighbours ----------------------------------------------------------------------------


@pytest.mark.parametrize("conn_id", sorted(NEIGHBOURS))
def test_neighbour_is_healthchecked_and_on_the_airflow_network(conn_id):
    neighbour, _ = NEIGHBOURS[conn_id]
    service = SERVICES[neighbour]
    assert "healthcheck" in service
    assert service.get("restart") in ("always", "unless-stopped")
    # Reachable by its service name: on the same network(s) as the worker that runs the tasks.
    worker_networks = set(SERVICES["airflow-worker"].get("networks") or ["default"])
    assert worker_networks & set(service.get("networks") or ["default"])
    assert service.get("network_mode") is None
    assert neighbour in SERVICES["airflow-worker"]["depends_on"]


def test_clamav_runs_clamd_and_freshclam():
    env = _environment(SERVICES["clamav"])
    assert env.get("CLAMAV_NO_CLAMD", "false") == "false"
    assert env.get("CLAMAV_NO_FRESHCLAMD", "false") == "false"
    mount = _mount_of(SERVICES["clamav"], PurePosixPath("/var/lib/clamav"))
    assert mount is not None and mount.kind == "volume", "signatures must survive restarts"


def test_mailpit_exposes_smtp_and_ui():
    assert {1025, 8025} <= _container_ports(SERVICES["smtp"])
