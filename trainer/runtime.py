"""What every trainer entry point (``train``, ``test``, ``predict``) sets up first: the CPU's denormal mode and safe
checkpoint reads.

**Denormals.** Floats below 1.2e-38 (float32) take a slow microcode path on x86 CPUs, 10-100× per operation.
``flush_denormals()`` makes the CPU treat them as zero (FTZ/DAZ, ``torch.set_flush_denormal``), once per process.
It must run before torch starts its BLAS threads: MKL's worker threads keep the floating-point mode they were created
with, so a later call reaches elementwise ops and convolutions but not ``matmul``/``bmm``. The CLI commands call it
before any torch work; a Python session should call it first thing. It changes results only where a value would
have been a denormal (below 1.2e-38 in magnitude): accuracy is unaffected.

**Checkpoints.** A checkpoint is read with ``torch.load(weights_only=True)``: tensors, numbers, strings, lists,
tuples and dicts only, so a file cannot run code when loaded. One that needs anything else is refused with one line.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

_flushing: bool | None = None


def flush_denormals() -> bool:
    """Treat denormal floats as zero on this CPU from now on (idempotent); False where the CPU cannot."""
    global _flushing
    if _flushing is None:
        _flushing = bool(torch.set_flush_denormal(True))
    return _flushing


def load_checkpoint(path, device: torch.device | str = "cpu", *, keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """The dict saved at ``path`` (tensors mapped to ``device``), read without running code; ``keys`` it must
    hold. Raises ``ValueError`` naming the file for an unreadable file, a pickled object, or a missing key."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        text = str(exc)
        found = re.search(r"GLOBAL (\S+)", text)
        if found:
            raise ValueError(f"{path}: refused: it holds a pickled Python object ({found.group(1)}), which could run "
                             f"code when loaded; a checkpoint may hold only tensors and plain values") from None
        detail = text.partition("WeightsUnpickler error:")[2].strip() or text
        detail = detail.splitlines()[0] if detail and not isinstance(exc, KeyError) else type(exc).__name__
        raise ValueError(f"{path}: not a readable torch checkpoint (truncated or another format: {detail})") from None
    if not isinstance(state, dict) or any(k not in state for k in keys):
        missing = [k for k in keys if not isinstance(state, dict) or k not in state]
        raise ValueError(f"{path}: not a skeltools checkpoint (no {', '.join(map(repr, missing))})")
    return state
