"""Scale-out: the one place SparseFlow runs work on Dask distributed (explore, run, benchmarks).

By default :func:`cluster` starts a ``LocalCluster`` (one single-threaded worker *process* per
core, or ``workers``) and stops it on the way out; with an address (``--cluster
tcp://HOST:8786`` or the ``SPARSEFLOW_CLUSTER`` environment variable) it connects to a
scheduler someone else started (``dask scheduler`` / ``dask worker``, or ``dask-jobqueue`` on
Slurm/LSF/PBS; docs/explore.md) and leaves it running.

Tasks are plain module-level functions of a configuration and its inputs; inputs travel as
bytes inside the task (never as a path only one machine has), so a lost result can be recomputed
on any worker. :func:`run_tasks` submits the tasks a :class:`scripts.store.Store` does not hold
yet and stores each result as it returns, under a progress bar.
"""
from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
import warnings
from contextlib import contextmanager

from model.errors import SparseFlowError

ENV = "SPARSEFLOW_CLUSTER"
CONNECT_TIMEOUT = 5.0  # seconds: an unreachable scheduler is one error line, soon
_ADDRESS = re.compile(r"^(tcp|tls)://[\w.\-\[\]:]+:\d+$|^[\w.\-]+:\d+$")


def add_arguments(parser) -> None:
    """``--workers N`` / ``--cluster ADDR`` for a command or benchmark that shards its work."""
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="local Dask worker processes (default: one per core)")
    parser.add_argument("--cluster", default=None, metavar="ADDR",
                        help=f"connect to a running Dask scheduler, e.g. tcp://HOST:8786 (default: ${ENV}, "
                             "else a local cluster started and stopped by the command)")


def address(cluster: str | None = None, workers: int | None = None) -> str | None:
    """The scheduler address to connect to (None: start a local cluster); checks the options."""
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise SparseFlowError(f"--workers must be >= 1, not {workers}")
    if cluster and workers is not None:
        raise SparseFlowError("--workers starts a local cluster; with --cluster the scheduler's workers run the tasks")
    # an explicit --workers starts a local cluster even when $SPARSEFLOW_CLUSTER is set
    addr = cluster or (os.environ.get(ENV) if workers is None else None) or None
    if addr and not _ADDRESS.match(addr):
        raise SparseFlowError(f"--cluster {addr!r} is not a scheduler address like tcp://HOST:8786")
    return addr


def probe(addr: str) -> None:
    """Raise the one-line error unless a TCP connection to the scheduler at ``addr`` opens within
    :data:`CONNECT_TIMEOUT` (checked before any work, so a typo costs seconds, not a sweep)."""
    import socket
    hostport = addr.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT).close()
    except (OSError, ValueError) as exc:
        raise SparseFlowError(f"cannot reach the Dask scheduler at {addr} within {CONNECT_TIMEOUT:g} s "
                              f"({exc.strerror or exc})") from None


@contextmanager
def cluster(workers: int | None = None, cluster_address: str | None = None, quiet: bool = True):
    """Yield a ``distributed.Client``: connected to ``cluster_address`` (or ``$SPARSEFLOW_CLUSTER``),
    else to a fresh ``LocalCluster`` of ``workers`` processes (default: the core count)."""
    addr = address(cluster_address, workers)
    from distributed import Client, LocalCluster
    if quiet:
        for name in ("distributed", "tornado", "bokeh"):
            logging.getLogger(name).setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", message=".*Large object of size.*")
        warnings.filterwarnings("ignore", message=".*Sending large graph.*")
    local = None
    if addr:
        try:
            client = Client(addr, timeout=f"{CONNECT_TIMEOUT}s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise SparseFlowError(f"cannot reach the Dask scheduler at {addr} within {CONNECT_TIMEOUT:g} s "
                                  f"({' '.join(str(exc).split())[:160]})") from None
    else:
        n = workers or os.cpu_count() or 1
        local = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",  # any free port
                             silence_logs=logging.ERROR if quiet else logging.WARNING)
        client = Client(local, set_as_default=False)
    try:
        yield client
    finally:
        client.close()
        if local is not None:
            local.close()


class Cluster:
    """A :func:`cluster` that starts in a background thread, so that the caller's own start-up
    (imports, reading inputs, planning) overlaps the workers' (``eager``; else it starts on
    first use of :attr:`client`), and that can stop in the background (:meth:`close` with
    ``wait=False``) while the caller writes its outputs. Use it as a context manager: the exit
    waits until the cluster has stopped. A start-up error (an unreachable scheduler) is raised
    where :attr:`client` is first used."""

    def __init__(self, workers: int | None = None, cluster_address: str | None = None, *, eager: bool = True):
        self._cm = cluster(workers, cluster_address)
        self._client = self._error = None
        self._started = self._closer = None
        self.start_seconds = None  # how long the start-up took (the thread's own clock)
        if eager:
            self._start()

    def _start(self) -> None:
        if self._started is None:
            self._started = threading.Thread(target=self._enter, name="sparseflow-cluster-start", daemon=True)
            self._started.start()

    def _enter(self) -> None:
        t0 = time.perf_counter()
        try:
            self._client = self._cm.__enter__()
        except BaseException as exc:  # re-raised in the caller's thread
            self._error = exc
        self.start_seconds = time.perf_counter() - t0

    @property
    def client(self):
        """The ``distributed.Client`` (waits for the start-up)."""
        if self._closer is not None:
            raise RuntimeError("the cluster is closed")
        self._start()
        self._started.join()
        if self._error is not None:
            raise self._error
        return self._client

    def close(self, wait: bool = True) -> None:
        """Stop the cluster (a started local one) and disconnect; ``wait=False``: in the background."""
        if self._closer is None:
            self._closer = threading.Thread(target=self._exit, name="sparseflow-cluster-stop", daemon=True)
            self._closer.start()
        if wait:
            self._closer.join()

    def _exit(self) -> None:
        if self._started is None:
            return
        self._started.join()
        if self._client is not None:
            self._cm.__exit__(None, None, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close(wait=True)


def progress_bar(total: int, desc: str, enabled: bool = True):
    """A tqdm bar on stderr (disabled: a no-op object with the same methods)."""
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="task", file=sys.stderr, disable=not enabled, dynamic_ncols=True,
                smoothing=0.1)


def timed(fn, *args):
    """``(fn(*args), seconds)``: what a task returns, so the store records compute time."""
    t0 = time.perf_counter()
    return fn(*args), time.perf_counter() - t0


def run_tasks(client, tasks: list[tuple[str, object, tuple]], on_result, *, desc: str = "tasks",
              progress: bool = True, total: int | None = None, warm=None) -> None:
    """Submit ``tasks`` (``(key, fn, args)``) and call ``on_result(key, result, seconds)`` in the
    calling process as each finishes (completion order). ``on_result`` may return further tasks,
    submitted at once (a pipeline: a compiled network's cost tasks follow its compile task).
    A task that raises stops the run with its error, named, on one line. ``total``: the
    progress bar's length when later tasks are known in advance. ``warm``: a function run once
    on every worker after the first tasks are placed (:func:`warm_up`)."""
    from distributed import as_completed
    bar = progress_bar(total if total is not None else len(tasks), desc, progress)
    futures: dict = {}
    pending = as_completed(loop=client.loop)
    warmups: list = []

    def submit(batch):
        for key, fn, args in batch:
            fut = client.submit(timed, fn, *args, key=f"{desc}-{key}", pure=False)
            futures[fut] = key
            pending.add(fut)

    try:
        submit(tasks)
        if warm is not None:
            warmups = warm_up(client, warm)
        for fut in pending:
            key = futures.pop(fut)
            try:
                result, seconds = fut.result()
            except SparseFlowError:
                raise
            except Exception as exc:  # a worker-side failure: name the task, keep one line
                msg = " ".join(str(exc).split())[:200]
                raise SparseFlowError(f"task {key} failed: {type(exc).__name__}: {msg}") from None
            more = on_result(key, result, seconds) or []
            bar.update(1)
            fut.release()
            submit(more)
    finally:
        for fut in [*futures, *warmups]:
            fut.cancel()
        bar.close()


def warm_up(client, fn) -> list:
    """Run ``fn()`` once on every worker the scheduler knows, at low priority, not waited for
    (returns the futures: cancel them when done). Submitted after the real tasks, so that an idle
    worker takes a real task first; a worker with nothing to do takes it at once."""
    workers = list(client.scheduler_info()["workers"])
    return [client.submit(fn, key=f"warm-{i}-{time.time_ns()}", workers=[w], allow_other_workers=False,
                          pure=False, priority=-100) for i, w in enumerate(workers)]


def sharded(workers: int | None, cluster_address: str | None) -> bool:
    """Whether a benchmark shards its work (``--workers``, ``--cluster`` or ``$SPARSEFLOW_CLUSTER``
    given) or runs it in-process as before."""
    return bool(address(cluster_address, workers)) or workers is not None


def map_tasks(fn, arglist: list[tuple], workers: int | None = None, cluster_address: str | None = None, *,
              desc: str = "tasks", progress: bool = True, on_result=None) -> list:
    """``[fn(*args) for args in arglist]``, in order: on a Dask cluster when :func:`sharded`, else
    in this process. ``on_result(i, result)`` is called as each finishes (completion order)."""
    if not sharded(workers, cluster_address):
        out = []
        for i, args in enumerate(arglist):
            out.append(fn(*args))
            if on_result:
                on_result(i, out[-1])
        return out
    addr = address(cluster_address, workers)
    if addr:
        probe(addr)
    results: dict = {}

    def keep(key, result, seconds):
        results[int(key)] = result
        if on_result:
            on_result(int(key), result)

    with cluster(workers, addr) as client:
        run_tasks(client, [(str(i), fn, args) for i, args in enumerate(arglist)], keep, desc=desc, progress=progress)
    return [results[i] for i in range(len(arglist))]
