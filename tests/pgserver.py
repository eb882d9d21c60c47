"""A throwaway PostgreSQL server on 127.0.0.1 for tests, which tests may stop and restart.

The cluster lives in a fresh directory (in memory, under /dev/shm, where there is one) and is
deleted by ``destroy()``. When the tests run as root, every PostgreSQL program runs as the
``postgres`` user, because initdb and the server refuse to run as root. The port stays the
same across restarts, so URLs stay valid.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import make_url

from needs import free_port

# Where clusters are made: the tmpfs of /dev/shm if there is one with room for a session's
# databases (a container's is often 64 MB), else the temporary folder.
SHM = "/dev/shm"
SHM_NEEDED = 2 * 1024**3


def _clusters_folder() -> str | None:
    try:
        roomy = shutil.disk_usage(SHM).free >= SHM_NEEDED and os.access(SHM, os.W_OK)
    except OSError:
        return None
    return SHM if roomy else None


CLUSTERS = _clusters_folder()


def find_bindir() -> Path | None:
    """Return the directory holding initdb, pg_ctl and createdb, or None if absent."""
    on_path = shutil.which("pg_ctl")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    # Debian puts the programs in a versioned directory off PATH; prefer the newest.
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for directory in candidates:
        if all((directory / name).is_file() for name in ("initdb", "pg_ctl", "createdb")):
            return directory
    return None


class PgServer:
    """One private PostgreSQL cluster: ``start()``, ``stop()``, ``url``, ``destroy()``."""

    def __init__(self, bindir: Path | None = None) -> None:
        found = bindir or find_bindir()
        if found is None:
            raise FileNotFoundError("PostgreSQL programs not found: apt-get install postgresql")
        self.bindir = found
        self.port = free_port()
        self.base: Path | None = None
        self.running = False

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the server's ``postgres`` database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bindir / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log = self._log_tail()
            raise RuntimeError(
                f"{' '.join(command)} failed ({done.returncode}): {done.stdout}{done.stderr}{log}"
            )

    def _log_tail(self) -> str:
        if self.base is None or not (self.base / "server.log").exists():
            return ""
        return "\n" + (self.base / "server.log").read_text(errors="replace")[-2000:]

    def _initdb(self) -> Path:
        # Not under pytest's tmp_path, which is 0700 root and not traversable by the postgres
        # user. In memory where there is a tmpfs: the session's server gathers a database per
        # test (10 MB each, half of it WAL), and on a disk other processes keep busy, creating
        # them and deleting the cluster at the end waited on that disk.
        base = Path(tempfile.mkdtemp(prefix="onwatch-pg-", dir=CLUSTERS))
        self.base = base
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(base, account.pw_uid, account.pw_gid)
        # UTF8 explicitly: an unset LANG would give SQL_ASCII, and psycopg then returns bytes.
        self._run(
            "initdb",
            "-D",
            str(base / "data"),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        return base

    def start(self) -> None:
        """Start the server (creating its cluster the first time) and wait until it accepts."""
        base = self.base or self._initdb()
        # fsync=off loses nothing when only the server dies (the kernel keeps the writes);
        # synchronous_commit stays on so that a commit the client saw survives stop("immediate").
        options = f"-p {self.port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(base / "data"),
            "-l",
            str(base / "server.log"),
            "-o",
            options,
            "-w",
            "start",
        )
        self.running = True

    def stop(self, mode: Literal["fast", "immediate"] = "fast") -> None:
        """Stop the server; "immediate" kills it without a clean shutdown, like a crash."""
        if not self.running or self.base is None:
            return
        self._run("pg_ctl", "-D", str(self.base / "data"), "-m", mode, "-w", "stop")
        self.running = False

    def destroy(self) -> None:
        """Stop the server at once and delete its cluster."""
        try:
            self.stop("immediate")
        finally:
            if self.base is not None:
                shutil.rmtree(self.base, ignore_errors=True)
                self.base = None

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database and return its URL."""
        return fresh_database(self.url, name, bindir=self.bindir)


def fresh_database(url: str, name: str | None = None, *, bindir: Path | None = None) -> str:
    """Create an empty database on the server of ``url`` and return its URL."""
    found = bindir or find_bindir()
    if found is None:
        raise FileNotFoundError("PostgreSQL programs not found: apt-get install postgresql")
    server = make_url(url)
    database = name or f"onwatch_{uuid.uuid4().hex[:12]}"
    subprocess.run(
        [
            str(found / "createdb"),
            "--host",
            server.host or "127.0.0.1",
            "--port",
            str(server.port or 5432),
            "--username",
            server.username or "postgres",
            "--no-password",
            database,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return server.set(database=database).render_as_string(hide_password=False)
