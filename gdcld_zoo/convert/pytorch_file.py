"""Read PyTorch checkpoint files (`pytorch_model.bin`, `.pth`) with numpy, never running their code.

`torch.save` writes a zip archive: `<name>/data.pkl`, a pickle of the state
dict, and `<name>/data/<key>`, one raw little-endian storage per key. The
pickle rebuilds each tensor by calling `torch._utils._rebuild_tensor_v2` on a
storage it names through a persistent id `("storage", torch.FloatStorage,
key, device, numel)`. A pickle can call any importable function, so, like
`torch.load(weights_only=True)`, this reader unpickles through an allow-list:
ordered dicts, the tensor and parameter rebuild functions and the storage
types. Every other global is refused by name before anything runs, and every
tensor view is checked to lie inside its storage. torch is not imported.

The pre-1.6 format (`_use_new_zipfile_serialization=False`) is read too: the
same pickle, with each storage's bytes after it (an 8-byte element count, then
the raw elements) instead of in zip entries.

Tensors come back as numpy arrays of the storage's dtype (bfloat16 as
float32, which holds it exactly).
"""

import collections
import pickle
import zipfile

import numpy as np

from gdcld_zoo.errors import GdcldZooError

# torch storage type -> numpy dtype of its bytes (bfloat16 read as raw uint16).
_STORAGE_DTYPES = {
    "DoubleStorage": "<f8",
    "FloatStorage": "<f4",
    "HalfStorage": "<f2",
    "BFloat16Storage": "<u2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}
# First bytes of the pickled magic number that opens a legacy (pre-1.6) torch file.
_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"


class UnsafeCheckpointError(GdcldZooError):
    """A checkpoint whose pickle asks for something other than tensors and dicts."""


class _Storage:
    """A torch storage type named by the pickle (e.g. `torch.FloatStorage`)."""

    def __init__(self, name):
        self.name = name


class _BFloat16Storage(np.ndarray):
    """uint16 storage holding bfloat16 bits (numpy has no bfloat16)."""


class _PendingStorage:
    """A storage of a legacy file, whose bytes follow the pickle."""

    def __init__(self, name, numel):
        self.name, self.numel, self.array = name, numel, None


class _PendingTensor:
    """A tensor of a legacy file, rebuilt once its storage has been read."""

    def __init__(self, storage, *layout):
        self.storage, self.layout = storage, layout

    def resolve(self):
        return _rebuild_tensor(self.storage.array, *self.layout)


def _rebuild_tensor(storage, offset, shape, strides, *_ignored):
    """The allow-listed `_rebuild_tensor_v2`: a numpy copy of a checked strided view."""
    if isinstance(storage, _PendingStorage):
        return _PendingTensor(storage, offset, shape, strides)
    if not isinstance(storage, np.ndarray):
        raise UnsafeCheckpointError("a tensor is rebuilt from something that is not a storage.")
    shape, strides = tuple(shape), tuple(strides)
    ints = (offset, *shape, *strides)
    if len(shape) != len(strides) or not all(isinstance(v, int) and v >= 0 for v in ints):
        raise UnsafeCheckpointError(f"a tensor has an invalid layout (shape {shape}, strides {strides}).")
    if 0 not in shape:
        last = offset + sum((n - 1) * s for n, s in zip(shape, strides))
        if last >= storage.size or np.prod(shape, dtype=np.int64) > storage.size:
            raise UnsafeCheckpointError(
                f"a tensor of shape {shape} (strides {strides}, offset {offset}) does not fit "
                f"its storage of {storage.size} elements."
            )
    itemsize = storage.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[offset:] if storage.size else storage, shape, tuple(s * itemsize for s in strides)
    )
    array = np.array(view)
    if isinstance(storage, _BFloat16Storage):
        return (array.astype("<u4") << 16).view("<f4")
    return array


def _rebuild_parameter(data, *_ignored):
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles state dicts only. `read_storage(name, key, numel)` gives the
    array of each storage the first time the pickle names it."""

    def __init__(self, handle, source, read_storage=None):
        super().__init__(handle)
        self._source, self._read_storage, self._storages = source, read_storage, {}

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _Storage(name)
        raise UnsafeCheckpointError(
            f"{self._source} asks to run {module}.{name} while loading; only tensors and "
            "dicts are read, so it was refused. Use the checkpoint's safetensors file, or "
            "re-save a state dict you trust with safetensors."
        )

    def persistent_load(self, pid):
        if self._read_storage is None or not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise UnsafeCheckpointError(f"{self._source} has an unknown persistent id {pid!r:.80}.")
        storage_type, key, numel = pid[1], pid[2], pid[4]
        if not isinstance(storage_type, _Storage) or not isinstance(key, str) or not isinstance(numel, int):
            raise UnsafeCheckpointError(f"{self._source} has a storage of unknown type {storage_type!r:.80}.")
        if len(pid) > 5 and pid[5] is not None:
            raise GdcldZooError(f"{self._source} holds storage views, which this reader does not rebuild.")
        if key not in self._storages:
            self._storages[key] = self._read_storage(storage_type.name, key, numel)
        return self._storages[key]


def _array(data, name):
    array = np.frombuffer(data, dtype=_STORAGE_DTYPES[name])
    return array.view(_BFloat16Storage) if name == "BFloat16Storage" else array


def read_pytorch_file(path):
    """Name -> numpy array of a `torch.save`d state dict, without torch and without running code.

    A checkpoint that wraps its state dict (`{"state_dict": ...}` or
    `{"model": ...}`, as some `.pth` files do) is unwrapped.

    Raises:
        UnsafeCheckpointError: The pickle names anything but tensors and dicts
            (the name is in the message; nothing was run) or a tensor lies
            outside its storage.
        GdcldZooError: Not a torch checkpoint, or a truncated one.
    """
    source = f"PyTorch checkpoint {path}"
    try:
        with open(path, "rb") as handle:
            if handle.read(len(_LEGACY_MAGIC)).startswith(_LEGACY_MAGIC):
                handle.seek(0)
                return _state_dict(_read_legacy(handle, source), source)
        if not zipfile.is_zipfile(path):
            raise GdcldZooError(f"{path} is not a PyTorch checkpoint (a torch.save file).")
        return _state_dict(_read_zip(path, source), source)
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError, KeyError) as error:
        raise GdcldZooError(f"{source} cannot be read: {error}") from None


def _read_zip(path, source):
    """The unpickled object of a zip-format file; storages are read from its entries."""
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise GdcldZooError(f"{path} holds {len(pickles)} data.pkl entries; a torch.save archive holds one.")
        prefix = pickles[0][: -len("data.pkl")]
        if f"{prefix}byteorder" in archive.namelist() and archive.read(f"{prefix}byteorder") != b"little":
            raise GdcldZooError(f"{path} stores big-endian tensors; re-save it on a little-endian machine.")

        def read_storage(name, key, numel):
            return _array(archive.read(f"{prefix}data/{key}"), name)

        with archive.open(pickles[0]) as handle:
            return _RestrictedUnpickler(handle, source, read_storage).load()


def _read_legacy(handle, source):
    """The unpickled object of a legacy file: magic number, protocol, system
    info and the object are pickles, then the storage keys, then each storage's
    element count (8 bytes, little-endian) and elements, in that order."""

    def plain():  # a pickle that may name no storage
        return _RestrictedUnpickler(handle, source).load()

    plain(), plain()
    info = plain()
    if not isinstance(info, dict) or not info.get("little_endian", False):
        raise GdcldZooError(f"{source} stores big-endian tensors; re-save it on a little-endian machine.")
    pending = {}

    def read_storage(name, key, numel):
        pending[key] = _PendingStorage(name, numel)
        return pending[key]

    loaded = _RestrictedUnpickler(handle, source, read_storage).load()
    keys = plain()
    if not isinstance(keys, list) or set(keys) != set(pending):
        raise GdcldZooError(f"{source} lists other storages than its tensors use.")
    for key in keys:
        storage = pending[key]
        numel = int.from_bytes(handle.read(8), "little")
        data = handle.read(numel * np.dtype(_STORAGE_DTYPES[storage.name]).itemsize)
        if numel != storage.numel or len(data) != numel * np.dtype(_STORAGE_DTYPES[storage.name]).itemsize:
            raise GdcldZooError(f"{source} is truncated or damaged (storage {key!r}).")
        storage.array = _array(data, storage.name)
    return _resolve(loaded)


def _resolve(value):
    """`value` with every pending tensor of a legacy file rebuilt (dicts searched)."""
    if isinstance(value, _PendingTensor):
        return value.resolve()
    if isinstance(value, dict):
        for key, item in value.items():
            value[key] = _resolve(item)
    return value


def _state_dict(loaded, source):
    if isinstance(loaded, dict) and loaded and all(isinstance(v, np.ndarray) for v in loaded.values()):
        return dict(loaded)
    for key in ("state_dict", "model"):
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            return _state_dict(loaded[key], source)
    raise GdcldZooError(f"{source} holds no state dict of tensors (found {type(loaded).__name__}).")
