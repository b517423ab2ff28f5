"""Where the embarrassingly parallel loops run: joblib on this machine, or a Dask or Ray cluster.

The probe repetitions, the twins' rendering and the world checks are joblib loops
(``Parallel(n_jobs=...)(delayed(f)(...) ...)``) whose tasks depend only on their
arguments. :func:`backend` chooses, from the profile, where joblib sends them; the loops
themselves do not change, and neither do their results (tested for Dask against loky):

- ``loky`` (default): worker processes on this machine, ``parallel_workers`` of them.
- ``dask``: the workers of a Dask cluster, through joblib's Dask backend
  (``dask.distributed``; ``pip install -e ".[cluster]"``). With ``dask_scheduler`` unset, a
  local cluster of ``parallel_workers`` single-threaded processes; set it to a running
  scheduler's address to use a cluster.
- ``ray``: the workers of a Ray cluster, through Ray's joblib backend
  (``pip install ray``; ``ray.init`` finds a running cluster as Ray documents).

Model training never goes through this: it stays on the machine's accelerators, with its
own number of processes (``training_workers``), so raising one knob cannot exhaust the
memory through the other.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from forgetting_aus.config import Config


def worker_count(requested: int) -> int:
    """``requested`` processes, ``-1`` meaning every core of this machine.

    Raises
    ------
    ValueError
        For 0 or a count below -1.
    """
    if requested == -1:
        return os.cpu_count() or 1
    if requested < 1:
        raise ValueError(f"a worker count must be >= 1, or -1 for every core; got {requested}")
    return requested


@contextlib.contextmanager
def backend(cfg: Config) -> Iterator[int]:
    """Run the joblib loops inside the ``with`` block on ``cfg.parallel_backend``.

    Yields
    ------
    int
        The ``n_jobs`` the loops should ask for (``parallel_workers``, ``-1`` resolved).
    """
    from joblib import parallel_config

    workers = worker_count(cfg.parallel_workers)
    if cfg.parallel_backend == "loky":
        with parallel_config(backend="loky"):
            yield workers
    elif cfg.parallel_backend == "dask":
        with _dask_client(cfg, workers), parallel_config(backend="dask"):
            yield workers
    elif cfg.parallel_backend == "ray":
        try:
            from ray.util.joblib import register_ray
        except ImportError:
            raise ImportError("parallel_backend: ray needs Ray in this environment: "
                              "`.venv/bin/pip install ray`, or use parallel_backend: loky or dask") from None
        register_ray()
        with parallel_config(backend="ray"):
            yield workers
    else:
        raise ValueError(f"parallel_backend must be loky, dask or ray; got {cfg.parallel_backend!r}")


@contextlib.contextmanager
def _dask_client(cfg: Config, workers: int):
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ImportError('parallel_backend: dask needs dask.distributed in this environment: '
                          '`.venv/bin/pip install -e ".[cluster]"`, or use parallel_backend: loky') from None
    if cfg.dask_scheduler:
        with Client(cfg.dask_scheduler) as client:
            yield client
        return
    # Single-threaded worker processes: each task is numpy/BLAS work that uses its own core.
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield client
