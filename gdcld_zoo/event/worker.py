"""What runs inside Dask workers: the per-worker engine and the block task (imports distributed)."""

from distributed import WorkerPlugin, get_worker

from gdcld_zoo.event.blocks import predict_block
from gdcld_zoo.scene.engines import make_engine

PLUGIN_NAME = "gdcld-zoo-engine"


class EngineLoader(WorkerPlugin):
    """Builds the engine (loads the weights) once per worker, when the worker starts or joins."""

    name = PLUGIN_NAME

    def __init__(self, weights, engine_name, tta):
        self.weights, self.engine_name, self.tta = weights, engine_name, tta
        self.engine = None

    def setup(self, worker):
        self.engine = make_engine(self.weights, self.engine_name, tta=self.tta)


def predict_block_on_worker(block, batch_size, folder):
    """`predict_block` with this worker's engine."""
    return predict_block(block, get_worker().plugins[PLUGIN_NAME].engine, batch_size, folder)
