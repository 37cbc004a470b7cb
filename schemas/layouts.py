"""Joint layouts: joint names, bone parents, graph edges, centre joint and left/right pairs.

Every index is 0-based. ``bone_parents[v]`` is the joint that bone ``v`` hangs from: the bone modality is
``x[v] - x[bone_parents[v]]``, and a joint that is its own parent gets a zero bone (the reference convention,
which keeps the bone array the same shape as the joint array). ``edges`` are the undirected graph edges the
models build their adjacency from, as ``(child, parent)`` pairs; ``edge_variants`` holds the other edge sets a
reference codebase uses for the same layout (pyskl's NTU graph links the hand tips straight to the hands).
"""
from __future__ import annotations

from dataclasses import dataclass, field


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
                                                                  SMARTHOME13)}


def get_layout(name: str) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(f"unknown layout {name!r}; known: {', '.join(sorted(LAYOUTS))}") from None


# Source joints of COCO-18 in BODY_25 and BODY_25B output, so that it can feed COCO-18-trained models (see
# ``skeltools.readers.openpose.map_joints``). BODY_25 drops MidHip (8) and the six foot points. BODY_25B has no neck:
# the shoulders' midpoint stands in for it (its UpperNeck is a different, higher point), and HeadTop and the feet
# are dropped.
TO_COCO18: dict[str, tuple[tuple[int, ...], ...]] = {
    "body25": joint_sources(BODY25, COCO18),
    "body25b": joint_sources(BODY25B, COCO18, {"Neck": ("RShoulder", "LShoulder")}),
}
BODY25_TO_COCO18 = tuple(i for (i,) in TO_COCO18["body25"])  # BODY_25 index of each COCO-18 joint
