"""A real PostgreSQL server owned by the embedded stack: data under the state directory, 127.0.0.1 only.

Binaries: ``GLUELINE_POSTGRES_BIN_DIR`` if set, else the system's (``/usr/lib/postgresql/<v>/bin`` or
``pg_config --bindir``), else the ones shipped in the ``pgserver`` wheel (``pip install glueline[pgserver]``).
PostgreSQL refuses to run as root; as root the server runs as the ``postgres`` system user (created as
``glueline-pg`` where no such user exists).

Local-development settings: ``fsync=off`` and ``synchronous_commit=off`` make it fast and are not safe
against power loss, which is fine for a throwaway database and never used on RDS.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
from pathlib import Path

from glueline.shared.dbsecret import DbConnection

DB_NAME = "glueline"
DB_USER = "glueline"


class PostgresError(RuntimeError):
    pass


def find_bin_dir(configured: Path | None = None) -> Path:
    candidates: list[Path] = []
    if configured:
        candidates.append(Path(configured))
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    candidates += [Path(p) for p in versions]
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    try:
        import pgserver  # optional: PostgreSQL binaries from PyPI

        candidates.append(Path(pgserver.__file__).parent / "pginstall" / "bin")
    except ImportError:
        pass
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise PostgresError(
        "no PostgreSQL server binaries found: install PostgreSQL (e.g. apt-get install postgresql), "
        "or `pip install glueline[pgserver]`, or set GLUELINE_POSTGRES_BIN_DIR"
    )


class PostgresServer:
    def __init__(self, root: Path, port: int, bin_dir: Path | None = None):
        self.root = Path(root).absolute()
        self.data_dir = self.root / "data"
        self.port = port
        self.bin_dir = find_bin_dir(bin_dir)
        self.password_file = self.root / "password"
        self.log_file = self.root / "postgres.log"
        self.user = _service_user()

    @property
    def connection(self) -> DbConnection:
        return DbConnection(
            host="127.0.0.1",
            port=self.port,
            dbname=DB_NAME,
            username=DB_USER,
            password=self.password_file.read_text().strip(),
            sslmode="disable",
        )

    def start(self) -> DbConnection:
        self.root.mkdir(parents=True, exist_ok=True)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        elif self.is_running():
            return self.connection
        self._pg_ctl(
            "start",
            "-w",
            "-t",
            "60",
            "-l",
            str(self.log_file),
            "-o",
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c timezone=UTC "
            "-c max_connections=100",
        )
        return self.connection

    def stop(self, mode: str = "fast") -> None:
        """``fast`` rolls back open transactions and shuts down cleanly; ``immediate`` is a crash."""
        if (self.data_dir / "postmaster.pid").exists():
            self._pg_ctl("stop", "-m", mode, "-w", "-t", "60", check=False)

    def postmaster_pid(self) -> int | None:
        """The server's process (its backends are its children), while it runs."""
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def is_running(self) -> bool:
        result = self._pg_ctl("status", check=False)
        return result.returncode == 0

    def _initdb(self) -> None:
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        self.password_file.write_text(secrets.token_urlsafe(18))
        os.chmod(self.password_file, 0o600)
        pwfile = self.root / ".initdb-pw"
        pwfile.write_text(self.password_file.read_text())
        self._own(self.root)
        try:
            self._run(
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                DB_USER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        # A database named after the pipeline, created by a single-user backend (no server needed yet).
        self._run(
            str(self.bin_dir / "postgres"),
            "--single",
            "-D",
            str(self.data_dir),
            "-c",
            "unix_socket_directories=",
            "postgres",
            stdin=f"CREATE DATABASE {DB_NAME} OWNER {DB_USER};\n",
        )

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args, check=check)

    def _run(self, *argv: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
        if self.user is not None:
            argv = ("runuser", "-u", self.user, "--", *argv)
        result = subprocess.run(argv, capture_output=True, text=True, input=stdin, check=False, cwd=self.root)
        if check and result.returncode != 0:
            raise PostgresError(
                f"{Path(argv[0] if self.user is None else argv[4]).name} failed ({result.returncode}): "
                f"{(result.stderr or result.stdout).strip()[-2000:]}\nlog: {self.log_file}"
            )
        return result

    def _own(self, path: Path) -> None:
        """As root, hand the server's directory to its user (which must be able to reach it)."""
        if self.user is None:
            return
        if not service_user_can_reach(path.parent):
            raise PostgresError(f"the PostgreSQL user {self.user!r} cannot enter {path.parent} or a directory above it")
        entry = pwd.getpwnam(self.user)
        for root, dirs, files in os.walk(path):
            for name in [root, *(os.path.join(root, d) for d in dirs), *(os.path.join(root, f) for f in files)]:
                os.chown(name, entry.pw_uid, entry.pw_gid)


def service_user_can_reach(directory: Path) -> bool:
    """Can the user the server runs as enter ``directory`` (or where it will be created)? Always, when
    the server runs as the current user."""
    user = _service_user()
    if user is None:
        return True
    uid = pwd.getpwnam(user).pw_uid
    for current in [Path(directory).absolute(), *Path(directory).absolute().parents]:
        if not current.exists():
            continue
        info = current.stat()
        if not (info.st_mode & 0o001) and info.st_uid != uid:
            return False
    return True


def _service_user() -> str | None:
    """None when not root; otherwise the system user the server runs as."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "glueline-pg"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "glueline-pg"], check=True)
    return "glueline-pg"
