"""A throwaway PostgreSQL cluster for tests: Debian's server binaries, a fresh data directory
in a temporary folder, listening on 127.0.0.1 on a free port only (no Unix socket in the
system's folder), trusted local logins, removed afterwards. As root, the cluster runs as the
`postgres` user (initdb refuses root)."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from harness.uvicorn_thread import free_port


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL server's bin folder (Debian), else one on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def _version(path: str) -> int:
    try:
        return int(Path(path).parts[-3])
    except ValueError:
        return 0


def _as_user(command: list[str], user: str | None) -> list[str]:
    return ["runuser", "-u", user, "--", *command] if user else command


@contextlib.contextmanager
def postgres_cluster(bin_dir: Path) -> Iterator[str]:
    """Start a cluster; yields its URL (`postgresql://USER@127.0.0.1:PORT/postgres`)."""
    user = "postgres" if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="parle-pg-"))
    data = folder / "data"
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    owner = user or pwd.getpwuid(os.geteuid()).pw_name
    port = free_port()
    subprocess.run(
        _as_user(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", owner, "--auth=trust",
             "--encoding=UTF8", "--no-sync"],
            user,
        ),
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off"
    subprocess.run(
        _as_user(
            [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-o", options,
             "-w", "-t", "60", "start"],
            user,
        ),
        check=True, capture_output=True, timeout=90,
    )  # fmt: skip
    try:
        url = f"postgresql://{owner}@127.0.0.1:{port}/postgres"
        _wait_for_port(port)
        yield url
    finally:
        subprocess.run(
            _as_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], user),
            capture_output=True, timeout=60,
        )  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for_port(port: int, timeout_s: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("PostgreSQL did not start listening")
