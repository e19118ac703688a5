"""Pretrained weights: typed records, registries, verified downloads, loading.

`load_pretrained("segformer_b4")` resolves the model's default weight tag in
the merged registries (shipped `weights/registry.json`, `GDCLD_ZOO_REGISTRY`,
the user registry), finds or downloads the file (`hf://` files pinned to a hub
commit, `gdcld_zoo.weights.hub`), checks its sha256 and returns the model with
its record (`get_weight_record`).
"""

from gdcld_zoo.weights.cache import WeightsNotFoundError, weights_file
from gdcld_zoo.weights.download import ChecksumError, DownloadError
from gdcld_zoo.weights.hub import HubError
from gdcld_zoo.weights.load import UntrainedHeadWarning, get_weight_record, load_pretrained
from gdcld_zoo.weights.record import InvalidWeightRecordError, Metrics, WeightRecord
from gdcld_zoo.weights.run import read_run_record, write_run_record
from gdcld_zoo.weights.sources import get_weights, list_weights

__all__ = [
    "ChecksumError",
    "DownloadError",
    "HubError",
    "InvalidWeightRecordError",
    "Metrics",
    "UntrainedHeadWarning",
    "WeightRecord",
    "WeightsNotFoundError",
    "get_weight_record",
    "get_weights",
    "list_weights",
    "load_pretrained",
    "read_run_record",
    "weights_file",
    "write_run_record",
]
