"""Joint layouts: joint names, bone parents, graph edges, centre joint and left/right pairs.

Every index is 0-based. ``bone_parents[v]`` is the joint that bone ``v`` hangs from: the bone modality is
``x[v] - x[bone_parents[v]]``, and a joint that is its own parent gets a zero bone (the reference convention,
which keeps the bone array the same shape as the joint array). ``edges`` are the undirected graph edges the
models build their adjacency from, as ``(child, parent)`` pairs; ``edge_variants`` holds the other edge sets a
reference codebase uses for the same layout (pyskl's NTU graph links the hand tips straight to the hands).

Custom layouts are files (TOML or JSON) read by ``load_layout``; see ``Layout.from_dict`` for the keys. A store
built with one records ``layout`` (its name) and ``layout_definition`` (``Layout.to_dict()``) in its attrs, so it
is self-contained; ``layout_from_attrs`` reads either kind back.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping


@dataclass(frozen=True)
class Layout:
    name: str
    joint_names: tuple[str, ...]
    bone_parents: tuple[int, ...]
    edges: tuple[tuple[int, int], ...]
    center: int
    left_right: tuple[tuple[int, int], ...] = ()
    edge_variants: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    description: str = ""

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def root(self) -> int:
        """The joint that is its own bone parent (the first, should a malformed layout have several)."""
        return next(v for v, p in enumerate(self.bone_parents) if v == p)

    @property
    def bone_pairs(self) -> tuple[tuple[int, int], ...]:
        """(child, parent) for every joint, self-pairs included."""
        return tuple((v, p) for v, p in enumerate(self.bone_parents))

    def graph_edges(self, variant: str | None = None) -> tuple[tuple[int, int], ...]:
        """The edge set of ``variant`` ("pyskl", ...) or the canonical one when None or not defined."""
        if variant is None:
            return self.edges
        return self.edge_variants.get(variant, self.edges)

    def check(self) -> None:
        """Raise ValueError unless the layout is well formed (unique names, indices in range, one tree)."""
        v = self.num_joints
        if len(set(self.joint_names)) != v:
            raise ValueError(f"layout {self.name}: joint names are not unique")
        if len(self.bone_parents) != v:
            raise ValueError(f"layout {self.name}: {len(self.bone_parents)} bone parents for {v} joints")
        if not all(0 <= p < v for p in self.bone_parents):
            raise ValueError(f"layout {self.name}: a bone parent is out of range 0..{v - 1}")
        if not 0 <= self.center < v:
            raise ValueError(f"layout {self.name}: centre joint {self.center} out of range")
        for edges in (self.edges, *self.edge_variants.values()):
            if not all(0 <= a < v and 0 <= b < v and a != b for a, b in edges):
                raise ValueError(f"layout {self.name}: an edge is out of range or a self-loop")
            if len({frozenset(e) for e in edges}) != v - 1 or not _connected(v, edges):
                raise ValueError(f"layout {self.name}: graph edges do not form one tree over {v} joints")


    def to_dict(self) -> dict[str, Any]:
        """The layout as plain JSON/TOML values, joints by index; ``Layout.from_dict`` reads it back."""
        out: dict[str, Any] = {"name": self.name, "description": self.description,
                               "joints": list(self.joint_names), "parents": list(self.bone_parents),
                               "edges": [list(e) for e in self.edges], "center": self.center,
                               "left_right": [list(p) for p in self.left_right]}
        if self.edge_variants:
            out["edge_variants"] = {k: [list(e) for e in v] for k, v in self.edge_variants.items()}
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "layout") -> "Layout":
        """A layout from a mapping (a parsed layout file); errors name ``source`` and the key.

        Keys: ``name`` (str), ``joints`` (list of unique names), ``parents`` (one per joint: a joint name or a
        0-based index; the root is its own parent, or -1), and optionally ``edges`` (pairs of joints; default:
        each joint to its parent), ``center`` (a joint; default: the root), ``left_right`` (pairs of joints),
        ``description`` (str) and ``edge_variants`` (name -> edges). Joints may be named or indexed anywhere.
        The parents must form one tree with exactly one root, and so must the edges.
        """
        def fail(key: str, problem: str) -> ValueError:
            return ValueError(f"{source}: {key}: {problem}")

        if not isinstance(d, Mapping):
            raise ValueError(f"{source}: expected a table of layout keys, got {type(d).__name__}")
        unknown = sorted(set(d) - _KEYS)
        if unknown:
            raise fail(unknown[0], f"unknown key; known: {', '.join(sorted(_KEYS))}")
        for key in ("name", "joints", "parents"):
            if key not in d:
                raise fail(key, "missing")
        name = d["name"]
        if not isinstance(name, str) or not name.strip():
            raise fail("name", f"expected a non-empty string, got {name!r}")
        names = d["joints"]
        if not isinstance(names, list) or not names:
            raise fail("joints", "expected a non-empty list of joint names")
        for i, n in enumerate(names):
            if not isinstance(n, str) or not n.strip():
                raise fail(f"joints[{i}]", f"expected a non-empty string, got {n!r}")
            if n in names[:i]:
                raise fail(f"joints[{i}]", f"{n!r} is not unique (also joints[{names.index(n)}])")
        v = len(names)

        def joint(value, key: str) -> int:
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise fail(key, f"expected a joint name or index, got {value!r}")
            if isinstance(value, str):
                if value not in names:
                    raise fail(key, f"{value!r} is not one of the joints")
                return names.index(value)
            if not 0 <= value < v:
                raise fail(key, f"index {value} is out of range 0..{v - 1}")
            return value

        def pairs(key: str, items) -> tuple[tuple[int, int], ...]:
            if not isinstance(items, list):
                raise fail(key, "expected a list of [joint, joint] pairs")
            out = []
            for i, pair in enumerate(items):
                if not isinstance(pair, list) or len(pair) != 2:
                    raise fail(f"{key}[{i}]", f"expected a pair [joint, joint], got {pair!r}")
                a, b = (joint(x, f"{key}[{i}]") for x in pair)
                if a == b:
                    raise fail(f"{key}[{i}]", f"joins {names[a]!r} to itself")
                out.append((a, b))
            return tuple(out)

        parents_in = d["parents"]
        if not isinstance(parents_in, list) or len(parents_in) != v:
            got = len(parents_in) if isinstance(parents_in, list) else type(parents_in).__name__
            raise fail("parents", f"expected a list of {v} parents (one per joint), got {got}")
        parents = tuple(i if p == -1 else joint(p, f"parents[{i}]") for i, p in enumerate(parents_in))
        roots = [i for i, p in enumerate(parents) if p == i]
        if len(roots) != 1:
            raise fail("parents", f"expected exactly one root (a joint that is its own parent, or -1), found "
                                  f"{len(roots)}" + (f": {', '.join(names[r] for r in roots)}" if roots else ""))
        for i in range(v):  # every chain of parents must reach the root
            seen, j = set(), i
            while parents[j] != j:
                if j in seen:
                    raise fail("parents", f"joints {', '.join(sorted(names[k] for k in seen))} form a cycle, "
                                          "not one tree")
                seen.add(j)
                j = parents[j]
        def tree(key: str, items) -> tuple[tuple[int, int], ...]:
            edges = pairs(key, items)
            if len({frozenset(e) for e in edges}) != v - 1 or len(edges) != v - 1 or not _connected(v, edges):
                raise fail(key, f"{len(edges)} edges do not form one tree over {v} joints (need {v - 1}, "
                                "connected, no repeats)")
            return edges

        edges = tree("edges", d["edges"]) if "edges" in d else _edges_from_parents(parents)
        center = joint(d["center"], "center") if "center" in d else roots[0]
        left_right = pairs("left_right", d["left_right"]) if "left_right" in d else ()
        sided = [j for p in left_right for j in p]
        if len(set(sided)) != len(sided):
            raise fail("left_right", "a joint is in more than one pair")
        variants = d.get("edge_variants", {})
        if not isinstance(variants, Mapping):
            raise fail("edge_variants", "expected a table of name -> edges")
        description = d.get("description", "")
        if not isinstance(description, str):
            raise fail("description", f"expected a string, got {description!r}")
        layout = cls(name=name, joint_names=tuple(names), bone_parents=parents, edges=edges, center=center,
                     left_right=left_right, description=description,
                     edge_variants={k: tree(f"edge_variants.{k}", e) for k, e in variants.items()})
        builtin = LAYOUTS.get(name)
        if builtin is not None and layout != builtin:
            raise fail("name", f"{name!r} is a built-in layout with another definition; choose another name")
        return layout


_KEYS = frozenset(("name", "description", "joints", "parents", "edges", "center", "left_right", "edge_variants"))


def _connected(num_joints: int, edges) -> bool:
    neighbours: dict[int, set[int]] = {j: set() for j in range(num_joints)}
    for a, b in edges:
        neighbours[a].add(b)
        neighbours[b].add(a)
    seen, todo = {0}, [0]
    while todo:
        for n in neighbours[todo.pop()] - seen:
            seen.add(n)
            todo.append(n)
    return len(seen) == num_joints


def _edges_from_parents(parents) -> tuple[tuple[int, int], ...]:
    return tuple((v, p) for v, p in enumerate(parents) if v != p)


# --- NTU RGB+D (Kinect v2 JointType order) -----------------------------------------------------------------------
_NTU25_NAMES = (
    "SpineBase", "SpineMid", "Neck", "Head", "ShoulderLeft", "ElbowLeft", "WristLeft", "HandLeft",
    "ShoulderRight", "ElbowRight", "WristRight", "HandRight", "HipLeft", "KneeLeft", "AnkleLeft", "FootLeft",
    "HipRight", "KneeRight", "AnkleRight", "FootRight", "SpineShoulder", "HandTipLeft", "ThumbLeft",
    "HandTipRight", "ThumbRight",
)
# The bone pairs of 2s-AGCN / MS-G3D / CTR-GCN / pyskl JointToBone: the hand chain runs tip -> thumb -> hand,
# and SpineShoulder (20) pairs with itself, giving a zero bone.
_NTU25_PARENTS = (1, 20, 20, 2, 20, 4, 5, 6, 20, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18, 20, 22, 7, 24, 11)
_NTU25_PYSKL_EDGES = tuple(
    (v, p) for v, p in _edges_from_parents(_NTU25_PARENTS) if v not in (21, 22, 23, 24)
) + ((21, 7), (22, 7), (23, 11), (24, 11))

NTU25 = Layout(
    name="ntu25",
    joint_names=_NTU25_NAMES,
    bone_parents=_NTU25_PARENTS,
    edges=_edges_from_parents(_NTU25_PARENTS),
    center=20,
    left_right=((4, 8), (5, 9), (6, 10), (7, 11), (12, 16), (13, 17), (14, 18), (15, 19), (21, 23), (22, 24)),
    edge_variants={"pyskl": _NTU25_PYSKL_EDGES},
    description="Kinect v2, NTU RGB+D 60/120; 3D camera coordinates in metres.",
)

# --- OpenPose COCO-18 (also Kinetics-Skeleton) -------------------------------------------------------------------
COCO18 = Layout(
    name="coco18",
    joint_names=(
        "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "RHip", "RKnee",
        "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
    ),
    bone_parents=(0, 0, 1, 2, 3, 1, 5, 6, 2, 8, 9, 5, 11, 12, 0, 0, 14, 15),
    edges=(
        (4, 3), (3, 2), (7, 6), (6, 5), (13, 12), (12, 11), (10, 9), (9, 8), (11, 5), (8, 2), (5, 1), (2, 1),
        (0, 1), (15, 0), (14, 0), (17, 15), (16, 14),
    ),
    center=1,
    left_right=((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13), (14, 15), (16, 17)),
    description="OpenPose COCO-18 and Kinetics-Skeleton; 2D, x, y and confidence.",
)

# --- COCO-17 (pyskl 'coco') --------------------------------------------------------------------------------------
COCO17 = Layout(
    name="coco17",
    joint_names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
        "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
        "right_knee", "left_ankle", "right_ankle",
    ),
    bone_parents=(0, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 0, 0, 11, 12, 13, 14),
    edges=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 5), (12, 6), (9, 7), (7, 5), (10, 8), (8, 6), (5, 0),
        (6, 0), (1, 0), (3, 1), (2, 0), (4, 2),
    ),
    center=0,
    left_right=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    description="COCO keypoints (pyskl 'coco'); 2D, x, y and confidence. Bones hang hips and shoulders from the nose.",
)

# --- OpenPose BODY_25 (poseParameters.cpp POSE_BODY_25_BODY_PARTS) -----------------------------------------------
# The COCO-18 tree with MidHip (8) between the neck and the hips; big toe, small toe and heel each hang from their
# ankle (a star, so a missing toe never breaks another foot bone). The nose hangs from the neck, which is the root.
_BODY25_PARENTS = (1, 1, 1, 2, 3, 1, 5, 6, 1, 8, 9, 10, 8, 12, 13, 0, 0, 15, 16, 14, 14, 14, 11, 11, 11)
BODY25 = Layout(
    name="body25",
    joint_names=(
        "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip", "RHip",
        "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar", "LBigToe", "LSmallToe",
        "LHeel", "RBigToe", "RSmallToe", "RHeel",
    ),
    bone_parents=_BODY25_PARENTS,
    edges=_edges_from_parents(_BODY25_PARENTS),
    center=1,
    left_right=((2, 5), (3, 6), (4, 7), (9, 12), (10, 13), (11, 14), (15, 16), (17, 18), (19, 22), (20, 23),
                (21, 24)),
    description="OpenPose BODY_25; 2D, x, y and confidence. Centre and self-parented root: the neck.",
)

# --- OpenPose BODY_25B (poseParameters.cpp POSE_BODY_25B_BODY_PARTS): COCO-17 order, then UpperNeck, HeadTop, feet
# Torso rooted at UpperNeck (17): shoulders and nose hang from it, hips from their shoulders, HeadTop from it;
# face points from the nose as in COCO-17, feet from the ankles.
_BODY25B_PARENTS = (17, 0, 0, 1, 2, 17, 17, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14, 17, 17, 15, 15, 15, 16, 16, 16)
BODY25B = Layout(
    name="body25b",
    joint_names=COCO17.joint_names + (
        "upper_neck", "head_top", "left_big_toe", "left_small_toe", "left_heel", "right_big_toe",
        "right_small_toe", "right_heel",
    ),
    bone_parents=_BODY25B_PARENTS,
    edges=_edges_from_parents(_BODY25B_PARENTS),
    center=17,
    left_right=COCO17.left_right + ((19, 22), (20, 23), (21, 24)),
    description="OpenPose BODY_25B; 2D, x, y and confidence. COCO-17 joints 0-16, then UpperNeck, HeadTop, feet.",
)


# --- LCR-Net 13 joints (Toyota Smarthome skeleton v1.1/v1.2), native order --------------------------------------
# LCR-Net draws 10 bones (limbs plus the hip and shoulder cross-bars) and joins mid-hip, mid-shoulder and head
# through virtual points that are not joints. No 13-node edge list is published; this tree keeps the 8 limb bones,
# hangs each shoulder from the head and each hip from its shoulder, and leaves out the two cross-bars (with them
# the graph would have cycles and a joint two bones).
SMARTHOME13 = Layout(
    name="smarthome13",
    joint_names=("RAnkle", "LAnkle", "RKnee", "LKnee", "RHip", "LHip", "RWrist", "LWrist", "RElbow", "LElbow",
                 "RShoulder", "LShoulder", "Head"),
    bone_parents=(2, 3, 4, 5, 10, 11, 8, 9, 10, 11, 12, 12, 12),
    edges=_edges_from_parents((2, 3, 4, 5, 10, 11, 8, 9, 10, 11, 12, 12, 12)),
    center=12,
    left_right=((0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11)),
    description="LCR-Net 13 joints (Toyota Smarthome pose v1.1/v1.2); 3D metres or 2D pixels of 640x480 video. "
                "The 17-joint 2D keypoint npz variant is COCO-17 order and uses coco17.",
)

# --- Halpe-26 (MMPose / AlphaPose 'halpe'): COCO-17, then head, neck, hip and the feet ---------------------------
# Tree rooted at the neck (18): head, nose and shoulders hang from it, the hip (19) too, the legs from the hip; face
# points as in COCO-17 but from the nose; toes and heels from their ankles. (MMPose's skeleton_links have cycles.)
_HALPE26_PARENTS = (18, 0, 0, 1, 2, 18, 18, 5, 6, 7, 8, 19, 19, 11, 12, 13, 14, 18, 18, 18, 15, 16, 15, 16, 15, 16)
HALPE26 = Layout(
    name="halpe26",
    joint_names=COCO17.joint_names + (
        "head", "neck", "hip", "left_big_toe", "right_big_toe", "left_small_toe", "right_small_toe", "left_heel",
        "right_heel",
    ),
    bone_parents=_HALPE26_PARENTS,
    edges=_edges_from_parents(_HALPE26_PARENTS),
    center=18,
    left_right=COCO17.left_right + ((20, 21), (22, 23), (24, 25)),
    description="Halpe-26 (MMPose 'halpe', RTMPose body8-halpe26); 2D, x, y and confidence. COCO-17 joints 0-16.",
)

# --- COCO-WholeBody 133 (MMPose 'coco_wholebody'): body 0-16, feet 17-22, face 23-90, left hand 91-111, right hand
# 112-132. Body as COCO-17, feet from their ankles, the 68 face points from the nose (a star: no face contour is
# a bone chain worth modelling), each hand's root from its wrist and every finger a chain of 4 from the root.
_FINGERS = ("thumb", "forefinger", "middle_finger", "ring_finger", "pinky_finger")


def _hand(side: str, root: int, wrist: int) -> tuple[tuple[str, ...], tuple[int, ...]]:
    names = (f"{side}_hand_root",) + tuple(f"{side}_{finger}{k}" for finger in _FINGERS for k in range(1, 5))
    parents = (wrist,) + tuple(root if k == 0 else root + 1 + 4 * f + k - 1 for f in range(5) for k in range(4))
    return names, parents


_LEFT_HAND, _RIGHT_HAND = _hand("left", 91, 9), _hand("right", 112, 10)
_WHOLEBODY_PARENTS = (COCO17.bone_parents + (15, 15, 15, 16, 16, 16) + (0,) * 68 + _LEFT_HAND[1] + _RIGHT_HAND[1])
WHOLEBODY133 = Layout(
    name="wholebody133",
    joint_names=COCO17.joint_names + (
        "left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel",
    ) + tuple(f"face_{k}" for k in range(68)) + _LEFT_HAND[0] + _RIGHT_HAND[0],
    bone_parents=_WHOLEBODY_PARENTS,
    edges=_edges_from_parents(_WHOLEBODY_PARENTS),
    center=0,
    left_right=COCO17.left_right + ((17, 20), (18, 21), (19, 22)) + tuple((91 + k, 112 + k) for k in range(21)),
    description="COCO-WholeBody 133 (MMPose 'coco_wholebody', RTMW / DWPose); 2D, x, y and confidence. COCO-17 "
                "joints 0-16, feet 17-22, face 23-90, left hand 91-111, right hand 112-132.",
)


def canonical_joint_name(name: str) -> str:
    """One spelling for the naming conventions: ``left_shoulder`` (COCO) and ``LShoulder`` (OpenPose) -> ``LShoulder``."""
    if "_" not in name and not name.islower():
        return name
    return "".join({"left": "L", "right": "R"}.get(part, part.capitalize()) for part in name.split("_"))


def joint_sources(source: Layout, target: Layout,
                  midpoints: dict[str, tuple[str, str]] | None = None) -> tuple[tuple[int, ...], ...]:
    """For each joint of ``target``: ``(i,)``, the ``source`` joint of the same name, or ``(i, j)``, the two source
    joints whose midpoint stands in for it (``midpoints``: target name -> two source names)."""
    index = {canonical_joint_name(n): i for i, n in enumerate(source.joint_names)}
    out = []
    for name in target.joint_names:
        pair = (midpoints or {}).get(name)
        names = pair if pair else (canonical_joint_name(name),)
        missing = [n for n in names if canonical_joint_name(n) not in index]
        if missing:
            raise ValueError(f"layout {source.name} has no joint {missing[0]!r} for {target.name} joint {name!r}")
        out.append(tuple(index[canonical_joint_name(n)] for n in names))
    return tuple(out)


LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in (NTU25, COCO18, COCO17, BODY25, BODY25B,
                                                                  SMARTHOME13, HALPE26, WHOLEBODY133)}


def get_layout(name: str) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(f"unknown layout {name!r}; known: {', '.join(sorted(LAYOUTS))}, or a .toml/.json "
                         "layout file") from None


LAYOUT_SUFFIXES = (".toml", ".json")


def load_layout(path) -> Layout:
    """A custom layout from a TOML or JSON file (keys: ``Layout.from_dict``); ``name`` defaults to the file stem."""
    path = Path(path)
    if path.suffix.lower() not in LAYOUT_SUFFIXES:
        raise ValueError(f"{path}: a layout file must end in .toml or .json")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the layout file ({exc.strerror or exc})") from None
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            doc = tomllib.loads(text)
        else:
            doc = json.loads(text)
    except ValueError as exc:  # tomllib.TOMLDecodeError and json.JSONDecodeError are ValueErrors
        raise ValueError(f"{path}: not valid {path.suffix[1:].upper()} ({exc})") from None
    if isinstance(doc, dict):
        doc.setdefault("name", path.stem)
    return Layout.from_dict(doc, str(path))


def resolve_layout(spec) -> Layout:
    """A ``Layout`` from a built-in name, a .toml/.json layout file, a ``Layout.to_dict()`` mapping or a Layout."""
    if isinstance(spec, Layout):
        return spec
    if isinstance(spec, Mapping):
        return Layout.from_dict(spec)
    if isinstance(spec, str) and spec in LAYOUTS:
        return LAYOUTS[spec]
    if isinstance(spec, (str, os.PathLike)) and (Path(spec).suffix.lower() in LAYOUT_SUFFIXES or Path(spec).exists()):
        return load_layout(spec)
    return get_layout(str(spec))


def layout_attrs(layout: Layout) -> dict[str, Any]:
    """What a store's attrs (or a run's ``run.json``) record of a layout: its name, and for a custom layout its
    whole definition as ``layout_definition``."""
    if LAYOUTS.get(layout.name) == layout:
        return {"layout": layout.name}
    return {"layout": layout.name, "layout_definition": layout.to_dict()}


def layout_from_attrs(attrs: Mapping[str, Any]) -> Layout:
    """The layout recorded by ``layout_attrs``: ``layout_definition`` when present, else the built-in ``layout``."""
    definition = attrs.get("layout_definition")
    if definition is None:
        return get_layout(attrs["layout"])
    layout = Layout.from_dict(definition, "layout_definition")
    if layout.name != attrs.get("layout"):
        raise ValueError(f"layout_definition is named {layout.name!r}, but layout is {attrs.get('layout')!r}")
    return layout


# Source joints of COCO-18 in BODY_25 and BODY_25B output, so that it can feed COCO-18-trained models (see
# ``skeltools.readers.openpose.map_joints``). BODY_25 drops MidHip (8) and the six foot points. BODY_25B has no neck:
# the shoulders' midpoint stands in for it (its UpperNeck is a different, higher point), and HeadTop and the feet
# are dropped.
TO_COCO18: dict[str, tuple[tuple[int, ...], ...]] = {
    "body25": joint_sources(BODY25, COCO18),
    "body25b": joint_sources(BODY25B, COCO18, {"Neck": ("RShoulder", "LShoulder")}),
}
BODY25_TO_COCO18 = tuple(i for (i,) in TO_COCO18["body25"])  # BODY_25 index of each COCO-18 joint
