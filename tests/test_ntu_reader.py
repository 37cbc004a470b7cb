"""The numba .skeleton parser: genuine files, grammar edge cases, and every kind of bad input."""
from __future__ import annotations

import numpy as np
import pytest

from skeltools.readers.ntu import SkeletonParseError, parse_skeleton, read_skeleton

BODY = b"72057594037931101 0 1 1 1 1 0 0.01 -0.25 2"
JOINT = b"0.1 0.2 3.5 1 2 3 4 0 0 0 0 2"


def skeleton_text(frames, joint=JOINT, body=BODY, eol=b"\r\n") -> bytes:
    """A .skeleton file whose frames list the number of bodies in each frame."""
    lines = [str(len(frames)).encode()]
    for n in frames:
        lines.append(str(n).encode())
        for _ in range(n):
            lines += [body, b"25"] + [joint] * 25
    return eol.join(lines) + eol


def python_reader(path):
    """Reference-style reader: split lines, int() body IDs, float() coordinates."""
    lines = [line for line in open(path).read().splitlines() if line.strip()]
    i, ids, xyz = 1, [], []
    for _ in range(int(lines[0])):
        n = int(lines[i]); i += 1
        for _ in range(n):
            ids.append(int(lines[i].split()[0])); i += 2
            for _ in range(25):
                xyz.append([float(t) for t in lines[i].split()[:3]]); i += 1
    return np.array(ids, np.int64), np.array(xyz, np.float32).reshape(-1, 25, 3)


# ---- genuine files ---------------------------------------------------------------------------------------------

def test_single_body_file(ntu_fixtures):
    s = read_skeleton(ntu_fixtures / "S001C001P001R001A011.skeleton")
    assert s.num_frames == 82
    assert s.bodies_per_frame.tolist() == [1] * 82
    assert set(s.body_id.tolist()) == {72057594037931648}
    # line 5: the first joint of frame 1
    np.testing.assert_array_equal(s.xyz[0, 0], np.float32([0.2058097, 0.1920515, 3.810989]))


def test_two_body_file_keeps_exact_ids(ntu_fixtures):
    s = read_skeleton(ntu_fixtures / "S001C003P008R002A058.skeleton")
    assert s.num_frames == 70 and len(s.body_id) == 140
    assert s.bodies_per_frame.tolist() == [2] * 70
    # the two IDs collide as float64; both survive as int64
    assert float(72057594037944738) == float(72057594037944734)
    assert s.body_id[:2].tolist() == [72057594037944738, 72057594037944734]
    assert s.slot[:4].tolist() == [0, 1, 0, 1] and s.frame[:4].tolist() == [0, 0, 1, 1]
    np.testing.assert_array_equal(s.xyz[0, 0], np.float32([0.7201789, 0.1647426, 3.561895]))  # line 5
    np.testing.assert_array_equal(s.xyz[1, 0], np.float32([-0.387201, -0.05403496, 2.961099]))  # line 32
    np.testing.assert_array_equal(s.xyz[2, 0], np.float32([0.7176324, 0.1643128, 3.563899]))  # line 60
    np.testing.assert_array_equal(s.xyz[-1, -1], np.float32([0.2655148, 0.1555307, 3.263833]))  # last line


def test_all_empty_file(ntu_fixtures):
    s = read_skeleton(ntu_fixtures / "S001C002P006R001A008.skeleton")
    assert s.num_frames == 71 and s.bodies_per_frame.sum() == 0 and s.xyz.shape == (0, 25, 3)


def test_bit_exact_against_python_reader(ntu_fixtures, tmp_path):
    for path in sorted(ntu_fixtures.glob("*.skeleton")):
        s = read_skeleton(path)
        ids, xyz = python_reader(path)
        np.testing.assert_array_equal(s.body_id, ids)
        assert s.xyz.tobytes() == xyz.tobytes(), path.name
        lf = tmp_path / path.name  # the same file with LF endings parses identically
        lf.write_bytes(path.read_bytes().replace(b"\r\n", b"\n"))
        assert read_skeleton(lf).xyz.tobytes() == s.xyz.tobytes()


# ---- grammar edge cases ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("eol", [b"\r\n", b"\n"])
def test_empty_frames_and_many_bodies(eol):
    s = parse_skeleton(skeleton_text([0, 0, 2, 0, 7, 1, 0], eol=eol))
    assert s.num_frames == 7
    assert s.bodies_per_frame.tolist() == [0, 0, 2, 0, 7, 1, 0]
    assert s.frame.tolist() == [2, 2] + [4] * 7 + [5]
    assert s.slot.tolist() == [0, 1] + list(range(7)) + [0]
    np.testing.assert_array_equal(s.xyz[:, 3], np.tile(np.float32([0.1, 0.2, 3.5]), (10, 1)))


def test_zero_frame_file():
    s = parse_skeleton(b"0\r\n")
    assert s.num_frames == 0 and s.bodies_per_frame.size == 0 and s.xyz.shape == (0, 25, 3)


@pytest.mark.parametrize("token,value", [
    (b"NaN", np.nan), (b"nan", np.nan), (b"-nan", np.nan), (b"inf", np.inf), (b"-Infinity", -np.inf),
    (b"1.5E-05", 1.5e-05), (b"1.5e-05", 1.5e-05), (b"-2.25e+02", -225.0), (b"3", 3.0), (b"-.5", -0.5),
    (b"7.", 7.0), (b"+0.125", 0.125), (b"0.12345678901234567891", 0.12345678901234567891),
])
def test_number_tokens(token, value):
    s = parse_skeleton(skeleton_text([1], joint=token + b" 0.2 3.5 1 2 3 4 0 0 0 0 2"))
    np.testing.assert_array_equal(s.xyz[:, :, 0], np.full((1, 25), value, np.float32))


def test_float32_rounding_equals_python_float():
    rng = np.random.default_rng(0)
    values = rng.normal(0, 2, 3000) * 10.0 ** rng.integers(-6, 4, 3000)
    tokens = [f"{v:.7g}" for v in values] + [f"{v:.9g}" for v in values[:600]] + [repr(float(v)) for v in values[:600]]
    joints = [" ".join(tokens[i:i + 3]) + " 1 2 3 4 0 0 0 0 2" for i in range(0, len(tokens) - 2, 3)]
    n_bodies = len(joints) // 25
    text = [str(n_bodies)]
    for b in range(n_bodies):
        text += ["1", BODY.decode(), "25"] + joints[b * 25:(b + 1) * 25]
    s = parse_skeleton(("\n".join(text) + "\n").encode())
    expected = np.float32([float(t) for line in joints[:n_bodies * 25] for t in line.split()[:3]])
    assert s.xyz.reshape(-1).tobytes() == expected.tobytes()


def test_third_party_float_in_integer_field():
    s = parse_skeleton(skeleton_text([1], body=b"72057594037931101 0 1 1 1 1 0 0.01 -0.25 1534.25"))
    assert s.body_id.tolist() == [72057594037931101]


# ---- bad input -------------------------------------------------------------------------------------------------

def bad(text: bytes) -> SkeletonParseError:
    with pytest.raises(SkeletonParseError) as info:
        parse_skeleton(text, "bad.skeleton")
    return info.value


def test_truncated_file_names_the_line():
    text = skeleton_text([1, 1, 1])
    err = bad(text[: len(text) // 2])
    lines_kept = text[: len(text) // 2].count(b"\n")
    assert err.path == "bad.skeleton"
    assert err.line in (lines_kept, lines_kept + 1)
    assert "ends" in str(err) and "frame 2/3" in str(err)


def test_truncated_inside_joint_line():
    text = skeleton_text([1])
    err = bad(text[:-20])
    assert err.line == 29 and "joint line" in str(err) and "joint 25/25" in str(err)


def test_garbage_token():
    text = skeleton_text([1, 1]).replace(b"3.5 1 2", b"3.5 1 x2", 1)
    err = bad(text)
    assert err.line == 5 and "'x2'" in str(err) and "a number" in str(err)
    err = bad(skeleton_text([1]).replace(b"0.1 0.2 3.5", b"0.1 0.2 3.5abc", 1))
    assert err.line == 5 and "3.5abc" in str(err)


def test_the_first_problem_in_file_order_is_named():
    """Coordinates and structure are checked in two passes (two kernels that compile in parallel); the error is
    still the first one a reader meets, reading the file from the top."""
    text = skeleton_text([2, 1])
    bad_float = text.replace(JOINT, b"0.1 0.2.0 3.5 1 2 3 4 0 0 0 0 2", 1)  # frame 1, body 1, joint 1
    err = bad(bad_float.replace(b"\r\n1\r\n", b"\r\nx\r\n", 1))  # and a bad body count in frame 2
    assert err.line == 5 and "'0.2.0'" in str(err) and "joint 1/25 of body 1, frame 1/2" in str(err)
    same_line = text.replace(JOINT, b"0.1 0.2.0 3.5 1 2", 1)  # a bad number and too few fields on one line
    err = bad(same_line)
    assert err.line == 5 and "'0.2.0'" in str(err)
    later = text.replace(JOINT + b"\r\n" + BODY, JOINT + b"\r\n" + BODY + b" 7", 1)  # body 2's line: 11 fields
    err = bad(later.replace(JOINT, b"0.1 0.2 3.5 1", 1))  # but joint 1 of body 1 comes first
    assert err.line == 5 and "12 field(s)" in str(err) and "found 4" in str(err)
    err = bad(later)
    assert err.line == 30 and "10 field(s)" in str(err) and "body 2 of frame 1/2" in str(err)
    err = bad(text.replace(JOINT, b"0.1 -", 1))
    assert err.line == 5 and "joint 1/25" in str(err)


def test_wrong_joint_count():
    err = bad(skeleton_text([1]).replace(b"\r\n25\r\n", b"\r\n24\r\n", 1))
    assert err.line == 4 and "25 joints" in str(err) and "found 24" in str(err)


def test_wrong_field_counts():
    err = bad(skeleton_text([1]).replace(JOINT, JOINT[:-2], 1))
    assert err.line == 5 and "12 field(s)" in str(err) and "found 11" in str(err)
    err = bad(skeleton_text([1]).replace(BODY, BODY + b" 7", 1))
    assert err.line == 3 and "10 field(s)" in str(err) and "found 11" in str(err)
    err = bad(skeleton_text([1]).replace(JOINT, b"0.1 0.2", 1))
    assert err.line == 5 and "found 2" in str(err)


def test_empty_and_bad_header():
    assert "frame count" in str(bad(b""))
    assert "frame count" in str(bad(b"\r\n  \r\n"))
    err = bad(b"abc\r\n")
    assert err.line == 1 and "'abc'" in str(err)
    assert "non-negative" in str(bad(b"-3\n"))


def test_trailing_content():
    err = bad(skeleton_text([1]) + b"1\r\n")
    assert "end of the file" in str(err) and err.line == 30


def test_unreadable_file(tmp_path):
    folder = tmp_path / "S001C001P001R001A001.skeleton"
    folder.mkdir()
    with pytest.raises(SkeletonParseError) as info:
        read_skeleton(folder)
    assert "readable file" in str(info.value) and str(folder) in str(info.value)
