"""A read-only zarr ``LocalStore`` that refuses to read a published shard file as zeros (imported lazily: zarr).

zarr returns the fill value for a chunk or shard key with no file (and for an empty one): right for a shard
whose frames were all zero when the store was published, silent data loss for a file removed since.
``SkeletonStore.open`` sets ``expected`` to the shard files recorded at publish; reading one of them when it is
gone or empty raises ``StoreError``.
"""
from __future__ import annotations

from zarr.storage import LocalStore

from skeltools.store import StoreError


class SealedLocalStore(LocalStore):
    """``LocalStore`` whose ``expected`` keys (relative to the store root) must exist and be non-empty."""

    expected: frozenset[str] = frozenset()

    async def get(self, key, prototype=None, byte_range=None):
        value = await super().get(key, prototype, byte_range)
        if key in self.expected and (value is None or not len(value)):
            state = "is missing" if value is None else "is empty"
            raise StoreError(f"{self.root}: shard file {key} {state}; it held data when the store was published "
                             f"(run `skeltools validate {self.root}`)")
        return value
