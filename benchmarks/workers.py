"""Worker processes that play the roles: started once per benchmark run, reused by every contender and workload.

Each worker keeps one open client per contender it has served, so a run pays process start-up and connection
set-up once, not on every repetition. A contender whose store lives in one process (the memory driver) plays all
its roles as threads of one worker.
"""

from __future__ import annotations

import multiprocessing
import threading
import traceback
from typing import Any

from .contenders import Client, Contender
from .roles import RoleResult, RoleSpec, drain, run_role

STARTUP = 120.0  # seconds a worker may take to start and answer


class WorkerError(RuntimeError):
    """A worker failed, did not answer in time, or reported an error."""


def _main(pipe: Any, done: Any, stop: Any) -> None:
    clients: dict[Contender, Client] = {}

    def client(contender: Contender) -> Client:
        found = clients.get(contender)
        if found is None:
            found = clients[contender] = contender.open()
        return found

    def gate() -> None:
        pipe.send(("ready",))
        if pipe.recv()[0] != "go":
            raise WorkerError("the worker was not told to go")

    while True:
        try:
            message = pipe.recv()
        except EOFError:
            break
        command = message[0]
        if command == "close":
            break
        try:
            if command == "roles":
                _, contender, specs = message
                found = client(contender)
                if len(specs) == 1:
                    results = [run_role(found, specs[0], gate, done, stop)]
                else:
                    results = _threads(found, specs, gate, stop)
                pipe.send(("result", results))
            elif command == "drain":
                _, contender, queue = message
                pipe.send(("result", drain(client(contender), queue)))
            elif command == "call":
                _, contender, method, args = message
                pipe.send(("result", getattr(client(contender), method)(*args)))
            elif command == "forget":
                if message[1] in clients:
                    clients.pop(message[1]).close()
                pipe.send(("result", None))
        except BaseException as error:
            pipe.send(("error", "".join(traceback.format_exception(error)).strip()))
    for found in clients.values():
        try:
            found.close()
        except Exception:
            pass


def _threads(client: Client, specs: list[RoleSpec], gate: Any, stop: Any) -> list[RoleResult]:
    """All roles as threads of this process: one gate for all, ``done`` once the producer threads have finished."""
    barrier = threading.Barrier(len(specs), action=gate)
    done = threading.Event()
    results: dict[str, RoleResult] = {}

    def wait() -> None:
        barrier.wait()

    def play(spec: RoleSpec) -> None:
        results[spec.name] = run_role(client, spec, wait, done, stop)

    threads = {spec.name: threading.Thread(target=play, args=(spec,), daemon=True) for spec in specs}
    for thread in threads.values():
        thread.start()
    for spec in specs:
        if spec.kind == "producer":
            threads[spec.name].join()
    done.set()
    for thread in threads.values():
        thread.join()
    return [results[spec.name] for spec in specs]


class Workers:
    """``size`` worker processes, with the events every run shares: ``done`` (producers finished) and ``stop``."""

    def __init__(self, size: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.done, self.stop = context.Event(), context.Event()
        self.pipes = []
        self.processes = []
        for index in range(size):
            parent, child = context.Pipe()
            process = context.Process(
                target=_main, args=(child, self.done, self.stop), name=f"marconi-bench-{index}", daemon=True
            )
            process.start()
            child.close()
            self.pipes.append(parent)
            self.processes.append(process)

    def __len__(self) -> int:
        return len(self.pipes)

    def send(self, index: int, *message: Any) -> None:
        self.pipes[index].send(message)

    def receive(self, index: int, timeout: float) -> tuple[Any, ...]:
        pipe = self.pipes[index]
        if not pipe.poll(timeout):
            raise WorkerError(f"worker {index} did not answer within {timeout:.0f} s")
        try:
            message: tuple[Any, ...] = pipe.recv()
        except (EOFError, OSError):
            raise WorkerError(f"worker {index} exited (exit code {self.processes[index].exitcode})") from None
        if message[0] == "error":
            raise WorkerError(f"worker {index}: {message[1]}")
        return message

    def call(self, index: int, contender: Contender, method: str, *args: Any, timeout: float = 900.0) -> Any:
        """``method(*args)`` on worker ``index``'s client of ``contender``."""
        self.send(index, "call", contender, method, args)
        return self.receive(index, timeout)[1]

    def close(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(("close",))
            except (BrokenPipeError, OSError):
                pass
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.terminate()
                process.join(5)
        for pipe in self.pipes:
            pipe.close()

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
