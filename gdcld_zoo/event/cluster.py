"""Running window blocks on a Dask distributed cluster, with the model loaded once per worker.

`scheduler` says where blocks run:

* None: in this process, one block after the other (`InProcess`);
* `"processes:N"`: a `dask.distributed.LocalCluster` of N single-threaded worker processes;
* `"tcp://HOST:PORT"`: an existing Dask scheduler (workers must see the
  sources and the output folder at the same paths, e.g. a shared file system).

On a cluster, an `EngineLoader` worker plugin builds the engine (loads the
weights) when a worker starts and keeps it; each block task takes it from
there, so a worker loads the model once however many blocks it predicts.
Workers write their blocks' sums next to the outputs and return only counts
and timings; the driver assembles the scene rasters. Dask is an optional
extra (`pip install "gdcld-zoo[distributed]"`).
"""

import contextlib
import os
from pathlib import Path

from gdcld_zoo.event.blocks import predict_block
from gdcld_zoo.event.sources import EventError
from gdcld_zoo.lazy_imports import require

# Blocks submitted ahead of the one the driver waits for, per worker.
BLOCKS_AHEAD_PER_WORKER = 4


class InProcess:
    """Runs blocks in this process with an engine already built."""

    workers = 1

    def __init__(self, engine):
        self.engine = engine

    def submit(self, block, batch_size, folder):
        """A callable returning the block's result (computed when called)."""
        return lambda: predict_block(block, self.engine, batch_size, folder)


class DaskCluster:
    """Runs blocks as Dask tasks, at most `ahead` blocks in front of the one the driver waits for.

    `submit` queues a block and returns a callable that waits for its result; blocks go to the
    cluster in queue order as the driver consumes them, so the block sums on disk stay bounded
    (the driver assembles in the same order).
    """

    def __init__(self, client, plugin, ahead=None):
        self.client, self.plugin = client, plugin
        self.workers = len(client.scheduler_info()["workers"])
        self.ahead = ahead or BLOCKS_AHEAD_PER_WORKER * max(self.workers, 1)
        self.queue, self.futures, self.submitted = [], {}, 0

    def submit(self, block, batch_size, folder):
        key = len(self.queue)
        self.queue.append((block, batch_size, str(folder)))
        return lambda: self._result(key)

    def _result(self, key):
        from gdcld_zoo.event.worker import predict_block_on_worker

        while self.submitted < min(key + self.ahead, len(self.queue)):
            block, batch_size, folder = self.queue[self.submitted]
            self.futures[self.submitted] = self.client.submit(predict_block_on_worker, block, self.plugin,
                                                              batch_size, folder, pure=False)
            self.submitted += 1
        return self.futures.pop(key).result()


def check_scheduler(scheduler, weights=None):
    """The scheduler as `("processes", N)`, `("address", URL)` or None; `EventError` for anything else.

    A scheduler needs Dask (`MissingExtraError` without it) and `weights` every worker can load.
    """
    if scheduler is None:
        return None
    text = str(scheduler)
    if text.startswith("processes:"):
        count = text.split(":", 1)[1]
        if not count.isdigit() or int(count) < 1:
            raise EventError(f"scheduler {text!r}: processes:N needs a worker count N >= 1, e.g. processes:2.")
        kind = "processes", int(count)
    elif "://" in text:
        kind = "address", text
    else:
        raise EventError(f"scheduler {text!r} is not understood; use processes:N (a local Dask cluster of N worker "
                         "processes) or tcp://HOST:PORT (an existing Dask scheduler).")
    require("distributed", "distributed")
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise EventError("a Dask scheduler needs weights every worker can load: a weight tag, run folder or "
                         f"weight file, not a {type(weights).__name__}.")
    return kind


@contextlib.contextmanager
def block_runner(scheduler, weights, engine_name="keras", tta=False, engine=None):
    """A context giving an `InProcess` or `DaskCluster` runner for `scheduler` (see module docstring).

    Args:
        scheduler: None, `"processes:N"` or a scheduler address.
        weights: What each worker builds its engine from (a tag or path: it must travel to workers).
        engine_name, tta: As for `make_engine`.
        engine: The driver's engine, used in process.
    """
    kind = check_scheduler(scheduler, weights)
    if kind is None:
        yield InProcess(engine)
        return
    distributed = require("distributed", "distributed")
    with contextlib.ExitStack() as stack:
        if kind[0] == "processes":
            cluster = stack.enter_context(distributed.LocalCluster(
                n_workers=kind[1], threads_per_worker=1, processes=True, dashboard_address=":0"))
            client = stack.enter_context(distributed.Client(cluster))
        else:
            try:
                client = stack.enter_context(distributed.Client(kind[1], timeout="30s"))
            except OSError as error:
                raise EventError(f"cannot reach the Dask scheduler at {kind[1]} ({error}); start it with "
                                 "`dask scheduler` and workers with `dask worker ADDRESS`.") from None
        from gdcld_zoo.event.worker import EngineLoader, has_plugin

        local = Path(weights).expanduser()
        loader = EngineLoader(str(local.resolve()) if local.exists() else str(weights), engine_name, tta)
        loaded = client.run(has_plugin, loader.name)
        if not loaded or not all(loaded.values()):
            client.register_plugin(loader)
        yield DaskCluster(client, loader.name)
