"""Servers of a test's own, on free ports, to stop, freeze and crash: Redis, RabbitMQ and
a PostgreSQL cluster."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from durable_jobs._task import process_is_gone
from tests.support.runner import free_port, stop_process_group, wait_until

if TYPE_CHECKING:
    from tests.support.tls import Certificates


class PrivateRedis:
    """A redis-server of the test's own, on a free port, with append-only persistence;
    given certificates, it speaks TLS only (and asks no client certificate)."""

    def __init__(self, appendonly: bool = True, tls: "Certificates | None" = None) -> None:
        self.port = free_port()
        self.appendonly = appendonly
        self.tls = tls
        self.dir = tempfile.mkdtemp(prefix="redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        listen = ["--port", str(self.port)]
        if self.tls is not None:
            listen = [
                "--port", "0",
                "--tls-port", str(self.port),
                "--tls-cert-file", str(self.tls.server_cert),
                "--tls-key-file", str(self.tls.server_key),
                "--tls-ca-cert-file", str(self.tls.ca),
                "--tls-auth-clients", "no",
            ]  # fmt: skip
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                *listen,
                "--bind",
                "127.0.0.1",
                "--dir",
                self.dir,
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--save",
                "",
                "--maxmemory-policy",
                "noeviction",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, 10, what="private redis to start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def crash(self) -> None:
        """SIGKILL: whatever was not yet written to disk is gone."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)
        self.process = None

    def freeze(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def _answers(self) -> bool:
        if self.tls is not None:
            return _tls_port_answers(self.port)
        return redis_answers(self.port)


def _tls_port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def redis_answers(port: int) -> bool:
    """A redis-server on this port answers PING (a frozen or stopped one does not)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def private_redis(
    appendonly: bool = True, tls: "Certificates | None" = None
) -> Iterator[PrivateRedis]:
    redis = PrivateRedis(appendonly, tls)
    redis.start()
    try:
        yield redis
    finally:
        if redis.process is not None:
            redis.thaw()
        redis.stop()
        shutil.rmtree(redis.dir, ignore_errors=True)


# The server script itself: the distribution's `rabbitmq-server` wrapper switches to the
# rabbitmq user, who cannot write to our temporary directory.
RABBITMQ_SERVER = os.environ.get("TEST_RABBITMQ_SERVER") or next(
    (
        path
        for path in ("/usr/lib/rabbitmq/bin/rabbitmq-server", shutil.which("rabbitmq-server"))
        if path and os.path.exists(path)
    ),
    "rabbitmq-server",
)
AMQP_PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
AMQP_METHOD_FRAME = b"\x01"


class PrivateRabbitMQ:
    """A RabbitMQ node of the test's own, on free ports, without plugins; its data
    survives a stop and start, as a real broker's does. Given certificates, it also
    listens for TLS (`tls_url`), asking no client certificate."""

    def __init__(self, tls: "Certificates | None" = None) -> None:
        self.port = free_port()
        self.dist_port = free_port()
        self.tls_port = free_port()
        self.node = f"rabbit-{uuid.uuid4().hex[:8]}@localhost"
        self.dir = tempfile.mkdtemp(prefix="rabbitmq-")
        Path(self.dir, "enabled_plugins").write_text("[].\n")
        if tls is not None:
            Path(self.dir, "rabbitmq.conf").write_text(
                f"listeners.ssl.default = {self.tls_port}\n"
                f"ssl_options.cacertfile = {tls.ca}\n"
                f"ssl_options.certfile = {tls.server_cert}\n"
                f"ssl_options.keyfile = {tls.server_key}\n"
                "ssl_options.verify = verify_none\n"
                "ssl_options.fail_if_no_peer_cert = false\n"
            )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    @property
    def tls_url(self) -> str:
        return f"amqps://guest:guest@127.0.0.1:{self.tls_port}//"

    def start(self) -> None:
        with Path(self.dir, "server.log").open("ab") as log:
            self.process = subprocess.Popen(
                [RABBITMQ_SERVER],
                env=self._env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self._answers, 60, interval=0.2, what="private rabbitmq to start")

    def stop(self) -> None:
        if self.process is not None:
            stop_process_group(self.process, timeout=30)
        self.process = None

    def crash(self) -> None:
        """SIGKILL the node (beam.smp and all): no clean shutdown, only what is on disk."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def freeze(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGCONT)

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            # The Erlang cookie is written to HOME; keep it out of the user's.
            "HOME": self.dir,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": f"{self.dir}/mnesia",
            "RABBITMQ_LOG_BASE": f"{self.dir}/log",
            "RABBITMQ_PID_FILE": f"{self.dir}/pid",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{self.dir}/enabled_plugins",
            "RABBITMQ_CONFIG_FILE": f"{self.dir}/rabbitmq",
            # One scheduler: the tests share two cores with the workers and PostgreSQL.
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "+S 1:1",
        }

    def _answers(self) -> bool:
        return amqp_answers(self.port)


def amqp_answers(port: int) -> bool:
    """A RabbitMQ node on this port starts the AMQP handshake (a frozen one does not)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.settimeout(0.5)
            sock.sendall(AMQP_PROTOCOL_HEADER)
            return sock.recv(1) == AMQP_METHOD_FRAME
    except OSError:
        return False


class PrivateBroker(Protocol):
    @property
    def url(self) -> str: ...

    process: "subprocess.Popen[bytes] | None"
    dir: str

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def freeze(self) -> None: ...
    def thaw(self) -> None: ...


@contextmanager
def private_rabbitmq(tls: "Certificates | None" = None) -> Iterator[PrivateRabbitMQ]:
    rabbitmq = PrivateRabbitMQ(tls)
    try:
        rabbitmq.start()
        yield rabbitmq
    finally:
        if rabbitmq.process is not None:
            rabbitmq.thaw()
        rabbitmq.stop()
        shutil.rmtree(rabbitmq.dir, ignore_errors=True)


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (initdb, pg_ctl) on a free port, so a
    test may stop it; run as the `postgres` user when the tests run as root."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pg-"))
        self.data = self.dir / "data"
        self._as_owner: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            shutil.chown(self.dir, user="postgres")
            self._as_owner = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def require_tls(self, certificates: "Certificates") -> None:
        """From the next start, TCP connections must use TLS with this server certificate."""
        for source, name in [
            (certificates.server_cert, "server.crt"),
            (certificates.server_key, "server.key"),
        ]:
            target = self.data / name
            shutil.copyfile(source, target)
            target.chmod(0o600)  # the server refuses a key others can read
            if self._as_owner:
                shutil.chown(target, user="postgres")
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\n"
            "hostssl all all 127.0.0.1/32 trust\n"
            "hostnossl all all 127.0.0.1/32 reject\n"
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("ssl = on\n")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.dir / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """`immediate` is a crash: no checkpoint, recovery on the next start."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def kill(self) -> None:
        """kill -9 of the server: its backends exit when they see it gone."""
        postmaster = self._postmaster_pid()
        backends = _children(postmaster)
        os.kill(postmaster, signal.SIGKILL)
        wait_until(
            lambda: all(process_is_gone(pid) for pid in [postmaster, *backends]),
            30,
            what="the backends to exit",
        )
        # The dead server may linger as a zombie where nothing reaps it, and its pid in
        # the lock file would then look alive to the next start: drop the lock, as a
        # container restart would.
        (self.data / "postmaster.pid").unlink()
        for lock in self.dir.glob(".s.PGSQL.*.lock"):
            lock.unlink()

    def freeze(self) -> None:
        """SIGSTOP the server and every backend: connections stay open, nothing answers."""
        self._signal_all(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal_all(signal.SIGCONT)

    def _signal_all(self, signum: int) -> None:
        postmaster = self._postmaster_pid()
        for pid in [postmaster, *_children(postmaster)]:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:  # a backend that ended meanwhile
                pass

    def _postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def remove(self) -> None:
        subprocess.run(
            [
                *self._as_owner,
                _postgres_binary("pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
        )
        shutil.rmtree(self.dir, ignore_errors=True)

    def _run(self, binary: str, *args: str) -> None:
        subprocess.run(
            [*self._as_owner, _postgres_binary(binary), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )


def _children(parent: int) -> list[int]:
    """The pids whose parent is `parent`, read from /proc."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            children.append(int(stat.parent.name))
    return children


def _postgres_binary(name: str) -> str:
    """Debian keeps initdb and pg_ctl out of PATH, under the server's version."""
    found = shutil.which(name) or sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if isinstance(found, str):
        return found
    assert found, f"{name} not found: install the PostgreSQL server"
    return str(found[-1])
