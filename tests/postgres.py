"""A throwaway PostgreSQL server for tests: ``initdb`` into a temporary folder, ``pg_ctl``
start on a free port (Unix socket in the same folder), stop and delete afterwards. Runs
as the ``postgres`` user when the tests run as root (PostgreSQL refuses root)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def postgres_bin() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl`` (PATH, then Debian's layout), or None."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """A throwaway server's data folder and port, and ``pg_ctl`` to stop or start it."""

    def __init__(self, folder: Path, port: int, binaries: Path, run_as: list[str]) -> None:
        self.folder, self.port, self.binaries, self.run_as = folder, port, binaries, run_as
        self.url = f"postgresql+psycopg://facenas@127.0.0.1:{port}/postgres"

    def url_with(self, password: str) -> str:
        """The URL with ``password`` in it, as users write them."""
        return self.url.replace("facenas@", f"facenas:{password}@")

    def _pg_ctl(self, *args: str, check: bool = True) -> None:
        subprocess.run(
            [*self.run_as, str(self.binaries / "pg_ctl"), "-D", str(self.folder / "data"), *args],
            check=check,
            capture_output=True,
        )

    def start(self) -> None:
        """Start it (again); waits until it accepts connections."""
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("-o", options, "-l", str(self.folder / "log"), "-w", "start")

    def stop(self) -> None:
        """Stop it at once, as a crash would (``-m immediate``)."""
        self._pg_ctl("-m", "immediate", "stop", check=False)


def _postgres_user() -> pwd.struct_passwd:
    """The ``postgres`` system user, created when running as root without one (a fresh
    container); FileNotFoundError (the tests skip) when it cannot be."""
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        made = subprocess.run(
            ["useradd", "--system", "--no-create-home", "postgres"], capture_output=True
        )
        if made.returncode != 0:
            raise FileNotFoundError("no postgres user, and useradd failed") from None
        return pwd.getpwnam("postgres")


@contextmanager
def postgres_server(password: str | None = None) -> Iterator[PostgresServer]:
    """Start a server; yield it (its SQLAlchemy URL for Optuna is ``.url``). With
    ``password``, TCP connections must give it (SCRAM); the socket stays trusted."""
    binaries = postgres_bin()
    if binaries is None:
        raise FileNotFoundError("initdb")
    folder = Path(tempfile.mkdtemp(prefix="facenas-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        user = _postgres_user()
        os.chown(folder, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    auth = ["-A", "trust"]
    if password is not None:
        secret = folder / "password"
        secret.write_text(password)
        if run_as:
            os.chown(secret, user.pw_uid, user.pw_gid)
        auth = ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={secret}"]
    subprocess.run(
        [*run_as, str(binaries / "initdb"), "-D", str(folder / "data"), *auth, "-U", "facenas"],
        check=True,
        capture_output=True,
    )
    server = PostgresServer(folder, _free_port(), binaries, run_as)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
