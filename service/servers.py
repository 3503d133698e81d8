"""PostgreSQL, Redis and HAProxy as local processes, for ``python -m service.cluster`` and the tests.

Each server keeps its data and configuration in one folder (var/cluster/… or a test's tmp dir), listens
on 127.0.0.1 only, and needs a password that lives in a 0600 file in that folder (generated on first
start) — never on a command line, which every local user can read (``ps``). The binaries come from
Debian's packages: ``postgresql-15`` (/usr/lib/postgresql/<version>/bin), ``redis-server``, ``haproxy``
(``make cluster-deps`` installs the last two).

PostgreSQL refuses to run as root; when this process is root the PostgreSQL commands run as the
``postgres`` system user (``setpriv``, which execs, so signals reach the server itself).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from .stack import Process

PG_USER = "assistant"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now (the kernel picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def read_or_create_secret(path: Path) -> str:
    """The secret in ``path`` (mode 0600), created with a random value on first use."""
    if path.exists():
        value = path.read_text(encoding="utf-8").strip()
        if len(value) >= 16:
            return value
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")
    os.chmod(path, 0o600)
    return value


def postgres_bin() -> Path:
    """The newest PostgreSQL installed from Debian's packages."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: make cluster-deps (apt-get install postgresql-15), or set "
                           "ASSISTANT_CLUSTER_PG_BIN")
    return found[-1].parent


def _as_postgres_user() -> list[str]:
    """The prefix that runs a PostgreSQL command as an unprivileged user (nothing unless we are root)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]


def _chown_to_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(path, user.pw_uid, user.pw_gid)


def tcp_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class ServerProcess(Process):
    """A Process whose readiness is a protocol check, not an HTTP health URL."""

    def __init__(self, name: str, command: list[str], probe, env: dict[str, str] | None = None, prepare=None):
        super().__init__(name, command, health_url="", env=env or {})
        self.probe = probe
        self.prepare = prepare  # run before each start (initdb, the configuration file)

    def start(self, log_dir: Path) -> None:
        if self.prepare:
            self.prepare()
        super().start(log_dir)

    def ready(self) -> bool:
        try:
            return bool(self.probe())
        except OSError:
            return False


@dataclass
class LocalPostgres:
    """A PostgreSQL cluster in ``folder`` (initdb on first start), password (SCRAM) authentication,
    listening on 127.0.0.1:``port`` only (no unix socket)."""

    folder: Path
    port: int
    databases: tuple[str, ...] = ("assistant",)  # created on first start; the first is the default
    bin_dir: Path | None = None  # PostgreSQL's binaries (default: the newest Debian package's)

    @property
    def bin(self) -> Path:
        return self.bin_dir or postgres_bin()

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def password(self) -> str:
        return read_or_create_secret(self.folder / "password")

    def url(self, database: str | None = None, driver: str = "postgresql") -> str:
        """SQLAlchemy URL (it holds the password: pass it by environment, never print it)."""
        return (f"{driver}://{PG_USER}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/"
                f"{database or self.databases[0]}")

    def initdb(self) -> None:
        """Create the cluster once: the superuser ``assistant`` with the generated password."""
        if (self.data / "PG_VERSION").exists():
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o755)
        self.data.mkdir(mode=0o700, exist_ok=True)
        _chown_to_postgres(self.data)
        pwfile = self.folder / "password"
        self.password  # noqa: B018 (creates the file)
        # initdb reads the password from a file; as root, the postgres user must be able to read it.
        pw_copy = self.data.parent / ".initdb-pw"
        shutil.copyfile(pwfile, pw_copy)
        os.chmod(pw_copy, 0o600)
        _chown_to_postgres(pw_copy)
        try:
            done = subprocess.run([*_as_postgres_user(), str(self.bin / "initdb"), "-D", str(self.data), "-U",
                                   PG_USER, f"--pwfile={pw_copy}", "--auth=scram-sha-256", "-E", "UTF8",
                                   "--locale=C.UTF-8"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if done.returncode:
                hint = (" (as root, PostgreSQL runs as the postgres user, who must be able to enter every folder "
                        f"above {self.folder})") if os.geteuid() == 0 else ""
                raise RuntimeError(f"initdb failed{hint}: {done.stderr.strip()}")
        finally:
            pw_copy.unlink(missing_ok=True)

    def process(self) -> ServerProcess:
        options = ["-p", str(self.port), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
                   "-c", "max_connections=200", "-c", "fsync=on"]
        return ServerProcess("postgres", [*_as_postgres_user(), str(self.bin / "postgres"), "-D",
                                          str(self.data), *options], self.ready, prepare=self.initdb)

    def ready(self) -> bool:
        """Accepting connections, and the application databases exist (created here when missing)."""
        if not tcp_open("127.0.0.1", self.port):
            return False
        import sqlalchemy as sa

        engine = sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
        try:
            with engine.connect() as db:
                for name in self.databases:
                    exists = db.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": name}).scalar()
                    if not exists:
                        db.execute(sa.text(f'CREATE DATABASE "{name}"'))
            return True
        except sa.exc.OperationalError:
            return False
        finally:
            engine.dispose()

    def create_database(self, name: str) -> str:
        """A new, empty database on this server; returns its URL."""
        import sqlalchemy as sa

        if not name.isidentifier():
            raise ValueError(f"not a database name: {name!r}")
        engine = sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
        try:
            with engine.connect() as db:
                db.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                db.execute(sa.text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url(name)


def redis_command(host: str, port: int, password: str, *command: str, timeout: float = 2.0) -> list[bytes]:
    """Send AUTH and one command in Redis's protocol; the raw reply lines (enough for PING, INFO, KEYS)."""
    def encode(*parts: str) -> bytes:
        out = [f"*{len(parts)}\r\n".encode()]
        for p in parts:
            b = p.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        return b"".join(out)

    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(encode("AUTH", password) + encode(*command))
        data = sock.recv(65536)
        sock.settimeout(0.2)  # the rest of a longer reply follows at once
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except (socket.timeout, TimeoutError):
            pass
        return data.split(b"\r\n")


@dataclass
class LocalRedis:
    """A Redis server in ``folder``: 127.0.0.1:``port``, ``requirepass`` from a 0600 file, no persistence
    (it holds conversation locks and socket.io messages in flight, nothing that must survive it)."""

    folder: Path
    port: int

    @property
    def password(self) -> str:
        return read_or_create_secret(self.folder / "password")

    def url(self, db: int = 0) -> str:
        """redis:// URL with the password (pass it by environment, never print it)."""
        return f"redis://:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{db}"

    def write_config(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "redis.conf"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("# Written by python -m service.cluster; holds the password (mode 0600).\n"
                    f"bind 127.0.0.1\nport {self.port}\nprotected-mode yes\ndaemonize no\n"
                    f"dir {self.folder}\nsave \"\"\nappendonly no\nlogfile \"\"\n"
                    f"requirepass {self.password}\n")
        os.chmod(path, 0o600)
        return path

    def process(self) -> ServerProcess:
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError("redis-server is not installed: make cluster-deps (apt-get install redis-server)")
        return ServerProcess("redis", [binary, str(self.folder / "redis.conf")], self.ready, prepare=self.write_config)

    def ready(self) -> bool:
        return tcp_open("127.0.0.1", self.port) and b"+PONG" in redis_command("127.0.0.1", self.port, self.password,
                                                                              "PING")
