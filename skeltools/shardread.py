"""Direct reads of the store's frame arrays: whole chunks out of shard files, without zarr's per-call machinery.

For the layout ``skeltools.shards`` encodes (float32 ``(F, M, V, C)``, chunks of ``chunk_frames`` frames inside
shards of ``shard_frames``; chunk = zstd(raw little-endian bytes) + crc32c; shard index = ``(chunks, 2)`` uint64
(offset, length) + crc32c at the end of the file) a read of frames ``[start, stop)`` is: per shard, its index
(read once, checksum verified, kept); per chunk, one ``pread`` and one zstd decode, its crc32c verified as zarr
does, the decoded chunk kept in a small LRU cache (consecutive samples usually share a chunk). A chunk the index
marks absent (``2**64 - 1``: zarr skips chunks whose bytes are all zero) reads as the fill value 0. A missing
shard *file* is an error (``ShardReadError``), never zeros: a truncated or damaged store must not train on
silence. Arrays of any other layout are read through zarr (``read_frames``).
"""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from skeltools.shards import ShardLayout, shard_layout
from skeltools.store import StoreError

_MISSING = 2**64 - 1
_CRC = 4  # bytes of a crc32c checksum


class ShardReadError(StoreError):
    """A shard file that is missing, truncated or fails its checksum."""


class ShardReader:
    """Frames ``[start, stop)`` of one array read straight from its shard files (see the module doc).

    ``cache_bytes``: decoded chunks kept (least recently used dropped first). Not thread-safe; one per process
    (it pickles as its path and reopens lazily).
    """

    def __init__(self, array_path, layout: ShardLayout, cache_bytes: int = 64 << 20,
                 recorded: frozenset[int] | None = None):
        self.path, self.layout = Path(array_path), layout
        self.recorded = recorded  # shards whose files existed at publish; None: unknown (every shard must exist)
        self.frame_shape = layout.shape[1:]
        self._chunk_bytes = layout.chunk_frames * int(np.prod(self.frame_shape)) * 4
        self._cache_chunks = max(1, cache_bytes // self._chunk_bytes)
        self._cache_bytes = cache_bytes
        self._chunks: OrderedDict[int, np.ndarray] = OrderedDict()
        self._indexes: dict[int, tuple[str, np.ndarray]] = {}
        self._zstd = None

    @classmethod
    def open(cls, array_path, cache_bytes: int = 64 << 20,
             recorded: frozenset[int] | None = None) -> "ShardReader | None":
        """A reader for the array at ``array_path``, or None when its layout is not the one this module reads.
        ``recorded``: the shards whose files existed at publish; any other shard held only zeros (no file)."""
        layout = shard_layout(Path(array_path))
        return None if layout is None else cls(array_path, layout, cache_bytes, recorded)

    def __getstate__(self):
        return {"path": self.path, "layout": self.layout, "cache_bytes": self._cache_bytes, "recorded": self.recorded}

    def __setstate__(self, state):
        self.__init__(state["path"], state["layout"], state["cache_bytes"], state.get("recorded"))

    def __len__(self) -> int:
        return self.layout.shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.layout.shape

    def __getitem__(self, frames: slice) -> np.ndarray:
        """``reader[start:stop]``: frames as ``read`` gives them (a step is not supported)."""
        start, stop, step = frames.indices(len(self))
        if step != 1:
            raise ValueError("ShardReader reads contiguous frames only")
        return self.read(start, stop)

    def read(self, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """Frames ``[start, stop)`` (clipped to the array) as float32 ``(stop - start, M, V, C)``."""
        start, stop = max(0, start), min(stop, len(self))
        if out is None:
            out = np.empty((max(0, stop - start), *self.frame_shape), np.float32)
        cf = self.layout.chunk_frames
        for k in range(start // cf, (stop + cf - 1) // cf):
            lo, hi = max(start, k * cf), min(stop, (k + 1) * cf)
            out[lo - start:hi - start] = self.chunk(k)[lo - k * cf:hi - k * cf]
        return out

    def chunk(self, k: int) -> np.ndarray:
        """Chunk ``k`` decoded, ``(chunk_frames, M, V, C)`` (read-only; the array's last chunk is full size)."""
        cached = self._chunks.get(k)
        if cached is not None:
            self._chunks.move_to_end(k)
            return cached
        data = self._decode(k)
        self._chunks[k] = data
        if len(self._chunks) > self._cache_chunks:
            self._chunks.popitem(last=False)
        return data

    def _decode(self, k: int) -> np.ndarray:
        shard, inner = divmod(k, self.layout.shard_frames // self.layout.chunk_frames)
        path, index = self._index(shard)
        offset, length = int(index[inner, 0]), int(index[inner, 1])
        shape = (self.layout.chunk_frames, *self.frame_shape)
        if offset == _MISSING:
            data = np.zeros(shape, np.float32)
        else:
            payload = _checked(_pread(path, offset, length), path, f"chunk {inner}")
            if self._zstd is None:
                from numcodecs import Zstd

                self._zstd = Zstd()
            raw = self._zstd.decode(payload)
            if len(raw) != self._chunk_bytes:
                raise ShardReadError(f"{path}: chunk {inner} decodes to {len(raw)} bytes, expected "
                                     f"{self._chunk_bytes}")
            data = np.frombuffer(raw, "<f4").reshape(shape)
        data.flags.writeable = False
        return data

    def _index(self, shard: int) -> tuple[str, np.ndarray]:
        """The file of shard ``shard`` and its (chunks, 2) table of (offset, length), read once."""
        known = self._indexes.get(shard)
        if known is None:
            path = str(self.layout.shard_path(self.path, shard))
            chunks = self.layout.shard_frames // self.layout.chunk_frames
            size = chunks * 16 + _CRC
            try:
                file_size = os.stat(path).st_size
            except FileNotFoundError:
                if self.recorded is not None and shard not in self.recorded:  # all zeros when published: no file
                    known = (path, np.full((chunks, 2), _MISSING, np.uint64))
                    self._indexes[shard] = known
                    return known
                raise ShardReadError(f"{path}: shard file missing (frames {shard * self.layout.shard_frames} on); "
                                     "the store is incomplete or damaged") from None
            if file_size < size:
                raise ShardReadError(f"{path}: {file_size} bytes, shorter than its {size}-byte index")
            table = _checked(_pread(path, file_size - size, size), path, "the shard index")
            index = np.frombuffer(table, "<u8").reshape(chunks, 2)
            ends = index[index[:, 0] != _MISSING].sum(axis=1)
            if len(ends) and ends.max() > file_size - size:
                raise ShardReadError(f"{path}: the index points past the chunk data ({file_size} bytes)")
            known = self._indexes[shard] = (path, index)
        return known


def _pread(path: str, offset: int, length: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.pread(fd, length, offset)
    finally:
        os.close(fd)
    if len(data) != length:
        raise ShardReadError(f"{path}: truncated ({length} bytes at {offset} expected, {len(data)} read)")
    return data


def _checked(data: bytes, path: str, what: str) -> bytes:
    """``data`` without its trailing crc32c, which must match (zarr's ``crc32c`` codec: little-endian uint32)."""
    import google_crc32c

    body = data[:-_CRC]
    if google_crc32c.value(body) != int.from_bytes(data[-_CRC:], "little"):
        raise ShardReadError(f"{path}: crc32c mismatch in {what}; the file is damaged")
    return body


def read_frames(array, start: int, stop: int) -> np.ndarray:
    """Frames ``[start, stop)`` of a ``ShardReader``, numpy array or zarr array."""
    if isinstance(array, ShardReader):
        return array.read(start, stop)
    return np.asarray(array[start:stop])
