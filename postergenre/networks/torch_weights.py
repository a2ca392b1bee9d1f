"""Read a legacy (pre-1.6) torch checkpoint with pickle and numpy only, no torch.

The file is: a magic number, a protocol version and system info (three small
pickles), then the state dict pickled with persistent ids that name storages,
then the list of storage keys, then each storage written raw (an int64 element
count followed by the bytes) in that order.
"""
from __future__ import annotations

import pickle
import struct
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..config import UserError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name: str):
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    def __init__(self, key: str, dtype: np.dtype):
        self.key, self.dtype, self.data = key, dtype, None


class _TensorRef:
    def __init__(self, storage: _Storage, offset: int, shape: tuple, stride: tuple):
        self.storage, self.offset, self.shape, self.stride = storage, offset, tuple(shape), tuple(stride)

    def to_numpy(self) -> np.ndarray:
        flat = self.storage.data
        if not self.shape:
            return flat[self.offset].copy()
        itemsize = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:], shape=self.shape, strides=[s * itemsize for s in self.stride])
        return np.array(view)


def _rebuild_tensor(storage, offset, shape, stride, *_ignored):
    return _TensorRef(storage, offset, shape, stride)


class _LegacyUnpickler(pickle.Unpickler):
    def __init__(self, file, storages: dict):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a weights file")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, _size = pid[:5]
        if kind != "storage":
            raise pickle.UnpicklingError(f"unknown persistent id {kind!r}")
        if key not in self.storages:
            self.storages[key] = _Storage(key, storage_type.dtype)
        return self.storages[key]


def load_legacy_state_dict(path: str | Path) -> OrderedDict[str, np.ndarray]:
    """The tensors of a legacy torch .pth file as numpy arrays, by name."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            if pickle.load(f) != LEGACY_MAGIC:
                raise UserError(f"{path}: not a legacy torch weights file (bad magic number)")
            pickle.load(f)  # protocol version
            pickle.load(f)  # system info
            storages: dict[str, _Storage] = {}
            state = _LegacyUnpickler(f, storages).load()
            keys = pickle.load(f)
            for key in keys:
                (count,) = struct.unpack("<q", f.read(8))
                storage = storages[key]
                buffer = f.read(count * storage.dtype.itemsize)
                if len(buffer) != count * storage.dtype.itemsize:
                    raise UserError(f"{path}: weights file is truncated")
                storage.data = np.frombuffer(buffer, dtype=storage.dtype)
    except (pickle.UnpicklingError, EOFError, struct.error, KeyError) as exc:
        raise UserError(f"{path}: cannot read weights file ({exc})") from None
    return OrderedDict((name, ref.to_numpy() if isinstance(ref, _TensorRef) else np.asarray(ref))
                       for name, ref in state.items())
