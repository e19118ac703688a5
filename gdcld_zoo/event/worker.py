"""What runs inside Dask workers: the per-worker engine and the block task (imports distributed)."""

import hashlib
import json

from distributed import WorkerPlugin, get_worker

from gdcld_zoo.event.blocks import predict_block
from gdcld_zoo.scene.engines import make_engine



class EngineLoader(WorkerPlugin):
    """Builds the engine (loads the weights) once per worker, when the worker starts or joins.

    The plugin's name is derived from the weights and engine options, so a long-lived cluster
    (`tcp://`) keeps the model loaded across runs with the same weights.
    """

    def __init__(self, weights, engine_name, tta):
        self.weights, self.engine_name, self.tta = weights, engine_name, tta
        key = json.dumps([weights, engine_name, bool(tta)])
        self.name = f"gdcld-zoo-engine-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
        self.engine = None

    def setup(self, worker):
        self.engine = make_engine(self.weights, self.engine_name, tta=self.tta)


def has_plugin(name, dask_worker):
    """Whether this worker already runs the plugin `name` (for `Client.run`)."""
    return name in dask_worker.plugins


def predict_block_on_worker(block, plugin, batch_size, folder):
    """`predict_block` with the engine of this worker's `EngineLoader` named `plugin`."""
    return predict_block(block, get_worker().plugins[plugin].engine, batch_size, folder)
