"""Import (and export) of the reference implementations' checkpoints.

Our modules compute exactly what the reference modules compute and keep their tensor layouts (data-BN feature
order, subset- and scale-major channels, 5-D G3D ``out_conv``, DG-STGCN's 8-entry ``alpha``/``beta`` and 25-entry
``add_coeff``), so a checkpoint maps onto a model by renaming keys alone. Each source has one function from our
key to the reference key; import inverts it and fails on any key or shape that does not match.

Sources: ``pyskl`` (DG-STGCN, ST-GCN, ST-GCN++, CTR-GCN recognizers: ``backbone.*``, ``cls_head.fc_cls.*``),
``msg3d`` (kenziyuliu/MS-G3D ``Model``), ``dualhead`` (tailin1009/DualHead-Network ``Model``) and ``ctrgcn``
(Uason-Chen/CTR-GCN ``Model``).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from torch import Tensor, nn

from .ctrgcn import CTRGCN, PysklCTRGCN
from .dualhead import DualHead
from .layers import PysklGCN
from .msg3d import MSG3D


def _pyskl_key(key: str) -> str:
    key = re.sub(r"^blocks\.(\d+)\.", r"backbone.gcn.\1.", key)
    return re.sub(r"^data_bn\.", "backbone.data_bn.", re.sub(r"^fc\.", "cls_head.fc_cls.", key))


def _pyskl_ctrgcn_key(key: str) -> str:
    key = re.sub(r"^blocks\.(\d+)\.(gcn|tcn)\.", r"backbone.net.\1.\g<2>1.", key)
    key = re.sub(r"^blocks\.(\d+)\.residual\.", r"backbone.net.\1.residual.", key)
    return re.sub(r"^(A|data_bn\.)", r"backbone.\1", re.sub(r"^fc\.", "cls_head.fc_cls.", key))


def _ctrgcn_key(key: str) -> str:
    if m := re.fullmatch(r"blocks\.(\d+)\.(gcn|tcn|residual)\.(.+)", key):
        part = {"gcn": "gcn1", "tcn": "tcn1", "residual": "residual"}[m[2]]
        return f"l{int(m[1]) + 1}.{part}." + ("PA" if m[2] == "gcn" and m[3] == "A" else m[3])
    return key


def _stgc_key(rest: str, stage: str) -> str:
    """Key ``rest`` inside one of our STGC stages -> the reference's name for MS-G3D stage ``stage``."""
    rest = re.sub(r"^sgcn\.", f"sgcn{stage}.", rest)
    rest = re.sub(r"^g3d\.(\d+)\.gcn\.", rf"gcn3d{stage}.gcn3d.\1.gcn3d.1.", rest)
    rest = re.sub(r"^g3d\.(\d+)\.", rf"gcn3d{stage}.gcn3d.\1.", rest)
    rest = re.sub(r"^tcn\.", f"tcn{stage}.", rest)
    return rest.replace(".mlp.", ".mlp.layers.")


def _msg3d_key(key: str) -> str:
    m = re.fullmatch(r"blocks\.(\d+)\.(.+)", key)
    return _stgc_key(m[2], str(int(m[1]) + 1)) if m else key


def _dualhead_key(key: str) -> str:
    if m := re.fullmatch(r"stem\.(.+)", key):
        return _stgc_key(m[1], "1")
    if m := re.fullmatch(r"(fine|coarse)\.(\d+)\.(.+)", key):
        return _stgc_key(m[3], f"{int(m[2]) + 2}_{m[1]}")
    if m := re.fullmatch(r"ta\.(\d+)\.(.+)", key):
        return f"conv_ta_fine_to_coarse_block_{int(m[1]) + 2}_to_{int(m[1]) + 1}.{m[2]}"
    if m := re.fullmatch(r"sa\.(\d+)\.(.+)", key):
        return f"conv_sa_coarse_to_fine_block_{int(m[1]) + 2}_to_{int(m[1]) + 2}.{m[2]}"
    return key


# source -> the model classes it fits, each with its key function
SOURCES: dict[str, tuple[tuple[type[nn.Module], Callable[[str], str]], ...]] = {
    "pyskl": ((PysklGCN, _pyskl_key), (PysklCTRGCN, _pyskl_ctrgcn_key)),
    "msg3d": ((MSG3D, _msg3d_key),),
    "dualhead": ((DualHead, _dualhead_key),),
    "ctrgcn": ((CTRGCN, _ctrgcn_key),),
}
_HEAD = re.compile(r"fc(_fine|_coarse)?\.")


def _resolve(model: nn.Module, source: str | None) -> Callable[[str], str]:
    fits = {name: to_reference for name, formats in SOURCES.items()
            for cls, to_reference in formats if isinstance(model, cls)}
    if not fits:
        raise ValueError(f"no reference checkpoint format is known for {type(model).__name__}")
    if source is None:
        source = next(iter(fits))
    if source not in SOURCES:
        raise ValueError(f"unknown reference source {source!r}; known: {', '.join(SOURCES)}")
    if source not in fits:
        raise ValueError(f"{source} checkpoints do not fit {type(model).__name__} (its format: {next(iter(fits))})")
    return fits[source]


def reference_names(model: nn.Module, source: str | None = None) -> dict[str, str]:
    """Our state-dict key -> the reference checkpoint's key, for every entry of ``model.state_dict()``."""
    to_reference = _resolve(model, source)
    return {key: to_reference(key) for key in model.state_dict()}


def export_reference_state_dict(model: nn.Module, source: str | None = None) -> dict[str, Tensor]:
    """``model``'s weights under the reference's key names (the pyskl recognizer, MS-G3D, DualHead or CTR-GCN
    ``Model``)."""
    names = reference_names(model, source)
    return {names[key]: value for key, value in model.state_dict().items()}


def _summary(what: str, keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit]) + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")
    return f"  {len(keys)} {what}: {shown}"


def load_reference_weights(model: nn.Module, state_dict: Mapping[str, Tensor], *, source: str | None = None,
                           head: bool = True) -> None:
    """Load a reference checkpoint into ``model`` in place.

    ``state_dict`` is the reference's state dict, or an mmcv checkpoint holding it under ``'state_dict'``; a
    ``module.`` prefix (DataParallel) is stripped. ``source`` ('pyskl', 'msg3d', 'dualhead', 'ctrgcn') defaults
    to the one ``model`` fits. ``num_batches_tracked`` entries may be absent. ``head=False`` skips the classifier(s) and
    keeps ours, for fine-tuning on other classes. Any unexpected, missing or mis-shaped key raises a ValueError
    that counts each kind and names the first few; nothing is loaded then.
    """
    if isinstance(state_dict.get("state_dict"), Mapping):
        state_dict = state_dict["state_dict"]
    given = {k.removeprefix("module."): v for k, v in state_dict.items()}
    ours = model.state_dict()
    names = reference_names(model, source)
    wanted = {ref: key for key, ref in names.items() if head or not _HEAD.match(key)}
    known = set(names.values())
    unexpected = [ref for ref in given if ref not in known]
    missing = [ref for ref in wanted if ref not in given and not ref.endswith("num_batches_tracked")]
    mis_shaped = [f"{ref} {tuple(given[ref].shape)} (model {tuple(ours[key].shape)})"
                  for ref, key in wanted.items() if ref in given and given[ref].shape != ours[key].shape]
    if unexpected or missing or mis_shaped:
        problems = [_summary(what, keys) for what, keys in
                    (("unexpected keys", unexpected), ("missing keys", missing), ("mis-shaped keys", mis_shaped))
                    if keys]
        raise ValueError(f"cannot load this checkpoint into {type(model).__name__}:\n" + "\n".join(problems))
    ours.update({key: given[ref] for ref, key in wanted.items() if ref in given})
    model.load_state_dict(ours)
