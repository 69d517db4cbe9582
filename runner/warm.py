"""The warm server: a process that has imported what workers need (TensorFlow, Keras, runner) and
outlives its command, forking the workers of the commands that follow, so that they skip the
import; one per user, Python and environment, ended after hydra.launcher.keep_warm idle seconds."""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import queue
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

# Environment variables that differ between shells of the same session and change no import.
VOLATILE = frozenset({"PWD", "OLDPWD", "SHLVL", "_", "COLUMNS", "LINES"})
SERVING = "RUNNER_WARM_SERVER"  # set in a server's own environment: runner.preload then outlives its parent
MOST_SERVERS = 2  # the oldest servers of other environments beyond these retire (each holds ~0.7 GB)
READY_WITHIN = 180.0  # seconds a command waits for a server that is still importing


def directory() -> Path:
    """This user's servers' sockets, process ids and logs: a folder only the user can open."""
    folder = Path(tempfile.gettempdir()) / f"runner-warm-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.stat().st_uid != os.getuid() or folder.stat().st_mode & 0o077:
        raise PermissionError(f"{folder} is not private to this user")
    return folder


def server_key(preload: Sequence[str], later: Sequence[str] = ()) -> str:
    """The server a command can use: same Python, environment and preloaded modules."""
    environment = sorted((key, value) for key, value in os.environ.items() if key not in VOLATILE)
    described = repr((sys.executable, sys.version, list(preload), list(later), environment))
    return hashlib.sha256(described.encode()).hexdigest()[:16]


def supported() -> bool:
    return hasattr(os, "fork") and hasattr(socket, "send_fds") and hasattr(socket, "AF_UNIX")


# Messages: a pickled object after its length; file descriptors travel with the length.
def send(connection: socket.socket, message: object, fds: Sequence[int] = ()) -> None:
    data = pickle.dumps(message)
    header = struct.pack("!Q", len(data))
    if fds:
        socket.send_fds(connection, [header], list(fds))
    else:
        connection.sendall(header)
    connection.sendall(data)


def receive(connection: socket.socket, fds: int = 0) -> tuple[object, list[int]]:
    if fds:
        header, received, _, _ = socket.recv_fds(connection, 8, fds)
    else:
        header, received = connection.recv(8), []
    header += _exactly(connection, 8 - len(header)) if header else b""
    if len(header) < 8:
        raise EOFError("the other end closed")
    return pickle.loads(_exactly(connection, struct.unpack("!Q", header)[0])), received


def _exactly(connection: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = connection.recv(min(left, 1 << 20))
        if not chunk:
            raise EOFError("the other end closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# --- the server -------------------------------------------------------------------------------


def _module_files() -> dict[str, tuple[int, int]]:
    files = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        with contextlib.suppress(OSError, TypeError):
            status = os.stat(path)
            files[path] = (status.st_mtime_ns, status.st_size)
    return files


def _changed(files: dict[str, tuple[int, int]]) -> str | None:
    """A module this server imported whose file changed since (an upgrade, an edit of runner)."""
    for path, seen in files.items():
        try:
            status = os.stat(path)
        except OSError:
            return path
        if (status.st_mtime_ns, status.st_size) != seen:
            return path
    return None


def _origins() -> dict[str, str]:
    """The file each top-level module this server loaded came from."""
    origins = {}
    for name in {name.partition(".")[0] for name in sys.modules} - {"__main__", "__mp_main__"}:  # each process's own
        origin = getattr(getattr(sys.modules.get(name), "__spec__", None), "origin", None)
        if origin and os.path.isabs(origin):
            origins[name] = origin
    return origins


def imports_differ(origins: dict[str, str]) -> str | None:
    """Why this command would import other modules than the server loaded (a folder of its import
    path, its working directory for one, holds a module of the same name), or None."""
    import importlib.util

    for name, origin in origins.items():
        try:
            found = getattr(importlib.util.find_spec(name), "origin", None)
        except (ImportError, ValueError):
            continue
        if found is not None and os.path.isabs(found) and found != origin:
            return f"{name} would be imported from {found}, not {origin}"
    return None


def serve(path: str, preload: list[str], later: list[str], keep_warm: float) -> None:
    """The server's life: import `preload`, then answer commands at `path`, each over a connection
    it holds while it runs (its lease), until none has held one for `keep_warm` seconds; `later`
    is imported once it listens, a module whenever no request waits. A server
    whose imported files changed, or asked to stop, retires: it takes no new command and ends once
    those it serves have ended."""
    import importlib
    import selectors

    for name in preload:
        importlib.import_module(name)
    files, loaded = _module_files(), len(sys.modules)

    def note_imports() -> None:  # as soon as modules are imported: an edit after that is a change
        nonlocal loaded
        if len(sys.modules) != loaded:
            files.update({file: seen for file, seen in _module_files().items() if file not in files})
            loaded = len(sys.modules)

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(path)
    except OSError:
        os._exit(0)  # another server took the address meanwhile
    listener.listen(16)
    inode = os.stat(path).st_ino
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    leases: set[socket.socket] = set()
    idle_since, retiring = time.monotonic(), False

    def retire() -> None:
        nonlocal retiring, keep_warm
        if not retiring:
            retiring, keep_warm = True, 0.0
            selector.unregister(listener)
            listener.close()
            if _still_at(path, inode):
                with contextlib.suppress(OSError):
                    os.unlink(path)
            with contextlib.suppress(OSError):
                pid_file = Path(path).with_suffix(".pid")
                if pid_file.read_text().strip() == str(os.getpid()):
                    pid_file.unlink()

    while True:
        _reap()
        events = selector.select(timeout=0.1 if later else 1.0)
        if not events and later:
            importlib.import_module(later.pop(0))
            note_imports()
        for event, _ in events:
            connection = event.fileobj
            if connection is listener:
                connection, _ = listener.accept()
                connection.settimeout(30)
            try:
                (kind, request), fds = receive(connection, fds=8)
            except (OSError, EOFError):
                kind, request, fds = "ended", None, []
            except Exception as error:  # noqa: BLE001  (a request that does not unpickle here)
                kind, request, fds = "unreadable", repr(error), []
            note_imports()  # unpickling a request may import
            keep = False  # a lease stays open, to be watched and to carry the command's requests
            try:
                if kind == "fork" and connection in leases:
                    _fork(connection, request, fds, selector)
                    keep = True
                elif kind == "keep" and connection in leases:
                    keep_warm = keep_warm if retiring else float(request["keep_warm"])
                    keep = True
                elif kind in ("check", "lease"):
                    stale = _changed(files)
                    if stale:
                        print(f"retiring: {stale} changed since it was imported", flush=True)
                        retire()
                    send(connection, ("stale", stale) if stale else ("ok", _origins()))
                    if kind == "lease" and not stale:
                        connection.settimeout(None)
                        selector.register(connection, selectors.EVENT_READ)
                        leases.add(connection)
                        keep_warm = keep_warm if retiring else float(request["keep_warm"])
                        keep = True
                elif kind == "stop":
                    print("retiring: asked to stop", flush=True)
                    retire()
                    send(connection, ("stopped", os.getpid()))
                elif kind != "ended":
                    send(connection, ("refused", f"{kind} {request!r}"[:500]))
                    keep = connection in leases
            except Exception:  # noqa: BLE001  (one command's bad request ends neither the server nor others)
                traceback.print_exc()
            finally:
                for fd in fds:
                    os.close(fd)
            if not keep:
                if connection in leases:
                    selector.unregister(connection)
                    leases.discard(connection)
                connection.close()
            idle_since = time.monotonic()
        if not leases and time.monotonic() - idle_since >= keep_warm:
            break
        if not retiring and not _still_at(path, inode):
            retire()  # another server took the address
    retire()
    os._exit(0)


def _reap() -> None:
    """Wait for the workers that ended (their CPU time then counts as the server's children's)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def _fork(connection: socket.socket, request: dict, fds: list[int], selector) -> None:
    """Fork a worker for the command at the other end of `connection` and say its process id."""
    pid = os.fork()
    if pid == 0:
        try:
            for key in list(selector.get_map().values()):
                key.fileobj.close()
            selector.close()
            _work(request, fds)
        finally:
            os._exit(1)  # never back into the server's loop
    print(f"forked worker {pid} for {request['cwd']}", flush=True)  # the server's log
    send(connection, ("ok", pid))


def _still_at(path: str, inode: int) -> bool:
    try:
        return os.stat(path).st_ino == inode
    except OSError:
        return False


def _work(request: dict, fds: list[int]) -> None:
    """A forked worker: the command's working directory, environment, import path and output, then
    its start (`initializer`), then the jobs it sends until it closes the connection."""
    task, output, errors, alive = fds
    os.dup2(output, 1)
    os.dup2(errors, 2)
    os.close(output)
    os.close(errors)
    # The process's own streams, now the command's output, line by line.
    sys.stdout = open(1, "w", buffering=1, encoding=sys.stdout.encoding, errors=sys.stdout.errors, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, encoding=sys.stderr.encoding, errors=sys.stderr.errors, closefd=False)  # noqa: SIM115
    connection = socket.socket(fileno=task)
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.path[:] = request["sys_path"]
        sys.argv[:] = request["argv"]
        request["initializer"](alive, *request["initargs"])
        for _ in range(request["jobs"] or sys.maxsize):
            try:
                (function, args), _ = receive(connection)
            except (EOFError, OSError):
                break
            try:
                reply = ("ok", function(*args))
            except BaseException as error:  # noqa: BLE001  (sent back to the command, as a pool does)
                reply = ("error", error, traceback.format_exc())
            sys.stdout.flush()
            sys.stderr.flush()
            try:
                send(connection, reply)
            except (pickle.PicklingError, TypeError, AttributeError):
                send(connection, ("error", RuntimeError(repr(reply[1])), ""))
    finally:
        os._exit(0)


# --- the command's side -----------------------------------------------------------------------


class Server:
    """A server this command uses: `path` its socket; `process` where this command started it."""

    def __init__(self, path: Path, process: subprocess.Popen | None = None, preload=(), keep_warm: float = 0) -> None:
        self.path, self.process, self.preload, self.keep_warm = path, process, list(preload), keep_warm
        self.lease: socket.socket | None = None
        self._lock = threading.Lock()

    def ask(self, kind: str, request: dict) -> tuple[str, object]:
        """One request over a connection of its own: "check" or "stop"."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(10)
            connection.connect(str(self.path))
            send(connection, (kind, request))
            reply, _ = receive(connection)
            return reply

    def hold(self, keep_warm: float | None = None, wait: bool = True) -> bool:
        """Wait until the server answers (it may be importing still; unless not `wait`), then hold
        a lease on it for as long as this command runs; False where it ended, does not answer yet
        or does not fit this command."""
        with self._lock:
            if self.lease is not None:
                if keep_warm is not None and keep_warm != self.keep_warm:
                    self.keep_warm = keep_warm
                    with contextlib.suppress(OSError):
                        send(self.lease, ("keep", {"keep_warm": keep_warm}))
                return True
            deadline = time.monotonic() + READY_WITHIN
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    return False
                connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    connection.connect(str(self.path))
                except OSError:
                    connection.close()
                    if not wait or (self.process is None and not _alive(self.path.with_suffix(".pid"))):
                        return False
                    time.sleep(0.02)
                    continue
                try:
                    connection.settimeout(60)
                    self.keep_warm = keep_warm = self.keep_warm if keep_warm is None else keep_warm
                    send(connection, ("lease", {"keep_warm": keep_warm}))
                    (answer, _), _ = receive(connection)
                except (OSError, EOFError):
                    answer = "gone"
                if answer != "ok":
                    connection.close()
                    return False
                self.lease = connection
                return True
            return False

    def fork(self, request: dict, fds: Sequence[int]) -> int:
        """A worker forked for this command (over its lease): its process id."""
        with self._lock:
            if self.lease is None:
                raise OSError("no lease on the warm server")
            send(self.lease, ("fork", request), fds)
            (answer, detail), _ = receive(self.lease)
        if answer != "ok":
            raise OSError(f"the warm server refused a worker: {detail}")
        return detail


def _alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


_server: Server | None = None


def find_or_start(preload: Sequence[str], keep_warm: float, later: Sequence[str] = ()) -> Server | None:
    """The warm server for this command (found, or started now to import while the command goes
    on; `later` once it serves), or None where there can be none here."""
    global _server
    if _server is not None or not supported():
        return _server
    try:
        folder = directory()
    except OSError:
        return None
    import fcntl  # POSIX only, as is the server

    key = server_key(preload, later)
    path, pid_file = folder / f"{key}.sock", folder / f"{key}.pid"
    with open(folder / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = Server(path, None, [*preload, *later], keep_warm)
        if path.exists():
            try:
                answer, origins = found.ask("check", {})
            except (OSError, EOFError):
                answer = "gone"
            if answer == "ok":
                if imports_differ(origins):
                    return None  # this folder imports other modules: the command's own fork server
                _server = found
                return _server
            with contextlib.suppress(OSError):
                path.unlink()  # a stale server has stopped; a dead one left its socket
        elif _alive(pid_file):
            _server = found  # started by another command, still importing
            return _server
        _retire_oldest_servers(folder, keep=MOST_SERVERS - 1)
        with open(folder / f"{key}.log", "a") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "runner.warm", str(path), ",".join(preload), ",".join(later), str(keep_warm)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, SERVING: "1"},
                start_new_session=True,  # the terminal's Ctrl-C and hang-up are the command's, not its
            )
        pid_file.write_text(str(process.pid))
    _server = Server(path, process, [*preload, *later], keep_warm)
    return _server


def _retire_oldest_servers(folder: Path, keep: int) -> None:
    """Retire the least recently started of this user's other servers beyond `keep` (one that
    serves a command ends when that command does)."""
    running = sorted(
        (pid_file for pid_file in folder.glob("*.pid") if _alive(pid_file)), key=lambda file: file.stat().st_mtime
    )
    for pid_file in running[: max(0, len(running) - keep)]:
        with contextlib.suppress(OSError, EOFError):
            Server(pid_file.with_suffix(".sock")).ask("stop", {})


def server() -> Server | None:
    """The warm server find_or_start found or started for this command, if any."""
    return _server


class WarmPool:
    """`workers` processes forked by a warm server, each started by `initializer(alive, *initargs())`
    (`alive`: the read end of a pipe the command closes when it ends) and replaced after
    `recycle_after` jobs; jobs and results travel over a socket pair per worker. A worker that
    ends midway fails its job and every queued one with BrokenProcessPool, as a process pool does."""

    def __init__(
        self,
        server: Server,
        workers: int,
        initializer: Callable,
        initargs: Callable[[], tuple],
        alive: int,
        recycle_after: int | None = None,
    ) -> None:
        self.server, self.workers, self.recycle_after = server, workers, recycle_after
        self.initializer, self.initargs, self.alive = initializer, initargs, alive
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._broken: str | None = None
        self._lock = threading.Lock()

    def submit(self, function: Callable, *args: object) -> Future:
        future: Future = Future()
        with self._lock:
            if self._broken:
                future.set_exception(BrokenProcessPool(self._broken))
                return future
            if not self._threads:
                self._threads = [
                    threading.Thread(target=self._feed, name=f"warm-worker-{slot}", daemon=True)
                    for slot in range(self.workers)
                ]
                for thread in self._threads:
                    thread.start()
            self._tasks.put((future, function, args))
        return future

    def shutdown(self) -> None:
        """Cancel the jobs not started, wait for those running, end the workers."""
        with self._lock:
            while True:
                try:
                    future, _, _ = self._tasks.get_nowait()
                except queue.Empty:
                    break
                future.cancel()
            for _ in self._threads:
                self._tasks.put(None)
        for thread in self._threads:
            thread.join()
        self._threads = []

    def _feed(self) -> None:
        connection, done = None, 0
        try:
            while (item := self._tasks.get()) is not None:
                future, function, args = item
                if not future.set_running_or_notify_cancel():
                    continue
                if self._broken:
                    future.set_exception(BrokenProcessPool(self._broken))
                    continue
                try:
                    connection = connection or self._fork()
                    send(connection, (function, args))
                    reply, _ = receive(connection)
                except (OSError, EOFError) as error:
                    self._break(f"a worker process ended abruptly ({error})")
                    future.set_exception(BrokenProcessPool(self._broken))
                    continue
                except Exception as error:  # noqa: BLE001  (a result or error that did not unpickle)
                    future.set_exception(error)
                    continue
                if reply[0] == "ok":
                    future.set_result(reply[1])
                else:
                    error = reply[1]
                    with contextlib.suppress(AttributeError):
                        error.add_note(f"In the worker:\n{reply[2]}")
                    future.set_exception(error)
                done += 1
                if self.recycle_after and done >= self.recycle_after:
                    connection.close()
                    connection, done = None, 0
        finally:
            if connection is not None:
                connection.close()

    def _fork(self) -> socket.socket:
        ours, theirs = socket.socketpair()
        request = {
            "cwd": os.getcwd(),
            "env": dict(os.environ),
            "sys_path": list(sys.path),
            "argv": list(sys.argv),
            "initializer": self.initializer,
            "initargs": self.initargs(),
            "jobs": self.recycle_after,
        }
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            self.server.fork(request, [theirs.fileno(), 1, 2, self.alive])
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        return ours

    def _break(self, reason: str) -> None:
        with self._lock:
            self._broken = self._broken or reason
            pending = []
            while True:
                try:
                    item = self._tasks.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    pending.append(item)
                elif item[0].set_running_or_notify_cancel():
                    item[0].set_exception(BrokenProcessPool(self._broken))
            for item in pending:
                self._tasks.put(item)


def stop_all() -> int:
    """Stop this user's servers (each ends once the commands it serves have ended; one still
    importing, which serves none, at once); how many."""
    import signal

    stopped = 0
    for pid_file in directory().glob("*.pid"):
        path = pid_file.with_suffix(".sock")
        with contextlib.suppress(OSError, EOFError, ValueError):
            if path.exists():
                stopped += Server(path).ask("stop", {})[0] == "stopped"
            elif _alive(pid_file) and b"runner.warm" in Path(f"/proc/{int(pid_file.read_text())}/cmdline").read_bytes():
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
                pid_file.unlink()
                stopped += 1
    return stopped


if __name__ == "__main__":
    if sys.argv[1:] == ["stop"]:  # python -m runner.warm stop
        print(f"Stopped {stop_all()} warm server(s) in {directory()}.")
    else:
        path, preload, later, keep_warm = sys.argv[1:]
        serve(
            path,
            [name for name in preload.split(",") if name],
            [name for name in later.split(",") if name],
            float(keep_warm),
        )
