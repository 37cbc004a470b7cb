"""NTU RGB+D ``.skeleton`` reader (the numba byte parser is added below this contract)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from skeltools import jit


@dataclass(frozen=True)
class SkeletonFile:
    """One parsed ``.skeleton`` file. Body-frames are listed in file order.

    num_frames        frame count from the header line
    bodies_per_frame  int32 (num_frames,)  bodies listed in each frame (0 for an empty frame)
    body_id           int64 (B,)  exact Kinect bodyID of each body-frame (B = total body-frames)
    frame             int32 (B,)  0-based frame index (header numbering, empty frames included)
    slot              int32 (B,)  position of the body within its frame (0 = first listed)
    xyz               float32 (B, 25, 3)  camera-space x, y, z in metres
    """

    num_frames: int
    bodies_per_frame: np.ndarray
    body_id: np.ndarray
    frame: np.ndarray
    slot: np.ndarray
    xyz: np.ndarray

    @classmethod
    def from_frames(cls, frames: list[list[tuple[int, np.ndarray]]]) -> "SkeletonFile":
        """Build from a list of frames, each a list of ``(body_id, xyz (25, 3))`` (handy in tests)."""
        body_id, frame, slot, xyz = [], [], [], []
        for f, bodies in enumerate(frames):
            for s, (bid, joints) in enumerate(bodies):
                body_id.append(bid)
                frame.append(f)
                slot.append(s)
                xyz.append(np.asarray(joints, dtype=np.float32))
        return cls(
            num_frames=len(frames),
            bodies_per_frame=np.array([len(b) for b in frames], dtype=np.int32),
            body_id=np.array(body_id, dtype=np.int64),
            frame=np.array(frame, dtype=np.int32),
            slot=np.array(slot, dtype=np.int32),
            xyz=np.array(xyz, dtype=np.float32).reshape(-1, 25, 3),
        )


class SkeletonParseError(ValueError):
    """A ``.skeleton`` file that does not follow the grammar; names the file, the line and what was expected."""

    def __init__(self, path: str, line: int, expected: str, found: str = ""):
        self.path, self.line, self.expected, self.found = str(path), line, expected, found
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: expected {expected}" + (f", found {found}" if found else ""))


JOINTS = 25
_BODY_FIELDS = 10
_JOINT_FIELDS = 12

# Character classes of the byte state machine.
_OTHER, _SPACE, _NEWLINE, _NUMERIC, _WORD = 0, 1, 2, 3, 4
_CLASS = np.zeros(256, dtype=np.uint8)
for _c in b" \t\r\v\f":
    _CLASS[_c] = _SPACE
_CLASS[ord("\n")] = _NEWLINE
for _c in b"0123456789.+-eE":
    _CLASS[_c] = _NUMERIC
for _c in b"nNaAiIfFtTyY":  # letters of nan / inf / infinity (e, E are numeric already)
    _CLASS[_c] = _WORD
_TOKEN = ((_CLASS == _NUMERIC) | (_CLASS == _WORD)).astype(np.uint8)
# Exact powers of ten: a decimal with a mantissa below 2**53 scaled by one of these is correctly rounded.
_POW10 = np.array([10.0**k for k in range(23)], dtype=np.float64)

# Status codes returned by the kernel.
_OK, _EOF, _BAD_TOKEN, _FIELD_COUNT, _JOINT_COUNT, _TRAILING, _NEGATIVE, _TOO_MANY = range(8)
# What the kernel was reading when it stopped.
_ITEM_FRAME_COUNT, _ITEM_BODY_COUNT, _ITEM_BODY_LINE, _ITEM_JOINT_COUNT, _ITEM_JOINT_LINE = range(5)
_ITEM_TEXT = ("a frame count", "a body count", "a body line", "a joint count", "a joint line")
_STATUS_TEXT = {
    _EOF: "more data (the file ends early)",
    _BAD_TOKEN: "a number",
    _NEGATIVE: "a non-negative integer",
    _TRAILING: "the end of the file after the last declared frame",
}


@njit(cache=True, nogil=True)
def _skip_blank(buf, p, line):
    """Skip whitespace and newlines; return the next token start and the updated line number."""
    n = buf.size
    while p < n:
        c = _CLASS[buf[p]]
        if c == _NEWLINE:
            line += 1
        elif c != _SPACE:
            break
        p += 1
    return p, line

@njit(cache=True, nogil=True)
def _skip_spaces(buf, p):
    n = buf.size
    while p < n and _CLASS[buf[p]] == _SPACE:
        p += 1
    return p

@njit(cache=True, nogil=True)
def _at_separator(buf, p):
    return p >= buf.size or _CLASS[buf[p]] == _SPACE or _CLASS[buf[p]] == _NEWLINE

@njit(cache=True, nogil=True)
def _parse_int(buf, p):
    """Signed decimal integer of up to 18 digits; returns (value, end, ok)."""
    n = buf.size
    neg = False
    if p < n and (buf[p] == 45 or buf[p] == 43):
        neg = buf[p] == 45
        p += 1
    start = p
    v = np.int64(0)
    while p < n and 48 <= buf[p] <= 57 and p - start < 19:
        v = v * 10 + (buf[p] - 48)
        p += 1
    ok = p > start and _at_separator(buf, p)
    return (-v if neg else v), p, ok

@njit(cache=True, nogil=True)
def _lower(b):
    return b + 32 if 65 <= b <= 90 else b

@njit(cache=True, nogil=True)
def _parse_float(buf, p):
    """Decimal float, nan or inf; returns (value, end, ok). Equal to float(text) for <= 19 digits."""
    n = buf.size
    neg = False
    if p < n and (buf[p] == 45 or buf[p] == 43):
        neg = buf[p] == 45
        p += 1
    if p < n and _CLASS[buf[p]] == _WORD:
        start = p
        while p < n and (_CLASS[buf[p]] == _WORD or _CLASS[buf[p]] == _NUMERIC):
            p += 1
        word = p - start
        c0, c1, c2 = _lower(buf[start]), _lower(buf[start + 1]) if word > 1 else 0, _lower(buf[start + 2]) if word > 2 else 0
        if word == 3 and c0 == 110 and c1 == 97 and c2 == 110:  # nan
            return np.nan, p, _at_separator(buf, p)
        if (word == 3 or word == 8) and c0 == 105 and c1 == 110 and c2 == 102:  # inf, infinity
            return (-np.inf if neg else np.inf), p, _at_separator(buf, p)
        return 0.0, p, False
    mant = np.uint64(0)
    digits = 0
    exp10 = 0
    seen = False
    while p < n and 48 <= buf[p] <= 57:
        if digits < 19:
            mant = mant * np.uint64(10) + np.uint64(buf[p] - 48)
            if mant > 0:
                digits += 1
        else:
            exp10 += 1
        seen = True
        p += 1
    if p < n and buf[p] == 46:  # '.'
        p += 1
        while p < n and 48 <= buf[p] <= 57:
            if digits < 19:
                mant = mant * np.uint64(10) + np.uint64(buf[p] - 48)
                if mant > 0:
                    digits += 1
                exp10 -= 1
            seen = True
            p += 1
    if not seen:
        return 0.0, p, False
    if p < n and (buf[p] == 101 or buf[p] == 69):  # e, E
        p += 1
        eneg = False
        if p < n and (buf[p] == 45 or buf[p] == 43):
            eneg = buf[p] == 45
            p += 1
        start = p
        e = 0
        while p < n and 48 <= buf[p] <= 57:
            if e < 100000:
                e = e * 10 + (buf[p] - 48)
            p += 1
        if p == start:
            return 0.0, p, False
        exp10 += -e if eneg else e
    v = float(mant)
    if exp10 < 0:
        v = v / _POW10[-exp10] if exp10 >= -22 else v * 10.0**exp10
    elif exp10 > 0:
        v = v * _POW10[exp10] if exp10 <= 22 else v * 10.0**exp10
    return (-v if neg else v), p, _at_separator(buf, p)

@njit(cache=True, nogil=True)
def _skip_fields(buf, p):
    """Validate and count the numeric fields left on this line; returns (count, end, bad_position)."""
    n = buf.size
    count = 0
    while True:
        while p < n and _CLASS[buf[p]] == _SPACE:
            p += 1
        if p >= n or buf[p] == 10:
            return count, p, -1
        start = p
        while p < n and _TOKEN[buf[p]]:
            p += 1
        if p < n and _CLASS[buf[p]] != _SPACE and buf[p] != 10:
            return count, p, start
        count += 1


@njit(cache=True, nogil=True)
def _next_int(buf, p, line):
    """Finish the current line (no field may follow), skip blank lines, parse the integer starting the next one.

    Returns (status, value, position, line, bad_position, detail).
    """
    count, q, bad = _skip_fields(buf, p)
    if count != 0 or bad >= 0:
        return (_FIELD_COUNT if bad < 0 else _BAD_TOKEN), 0, p, line, bad, count + 1
    p, line = _skip_blank(buf, q, line)
    if p >= buf.size:
        return _EOF, 0, p, line, -1, 0
    value, p, ok = _parse_int(buf, p)
    if not ok:
        return _BAD_TOKEN, 0, p, line, p, 0
    return _OK, value, p, line, -1, 0


@njit(cache=True, nogil=True)
def max_frames(remaining):
    """The most frames ``remaining`` bytes after the frame count can hold: each frame is at least a body count
    and a line break (``"0\\n"``), the last one's break optional."""
    return (remaining + 1) // 2


@njit(cache=True, nogil=True)
def _parse_bytes(buf):
    """The structure of a whole ``.skeleton`` file held as uint8: every count, body line and field checked, each
    joint line's start and line number recorded for :func:`_parse_joints` (two kernels that compile in parallel).

    Returns (status, item, line, bad_pos, detail, frame, body, joint, num_frames, n_body_frames,
    bodies_per_frame, body_id, frame_of, slot, joint_starts, joint_lines). ``bad_pos`` is the byte offset of a bad
    token (-1 if none); ``detail`` carries a count found where another was expected. The joint lines run to the
    one where a problem was found, included.
    """
    cap = buf.size // 600 + 1  # a body block takes at least 25 joint lines of 24 bytes
    body_id = np.empty(cap, np.int64)
    frame_of = np.empty(cap, np.int32)
    slot = np.empty(cap, np.int32)
    starts = np.empty(cap * 25, np.int64)
    lines = np.empty(cap * 25, np.int32)
    recorded = 0
    line = np.int64(1)  # typed, not literal: _skip_blank compiles for one signature
    nb = 0
    f = b = j = 0
    num_frames = 0
    item = _ITEM_FRAME_COUNT
    status = _OK
    detail = 0
    bad = -1
    p, line = _skip_blank(buf, np.int64(0), line)
    if p >= buf.size:
        status = _EOF
    else:
        num_frames, p, ok = _parse_int(buf, p)
        if not ok:
            status, bad, num_frames = _BAD_TOKEN, p, 0
        elif num_frames < 0:
            status, num_frames = _NEGATIVE, 0
        elif num_frames > max_frames(buf.size - p):  # checked before allocating anything per frame
            status, detail = _TOO_MANY, max_frames(buf.size - p)
    # A bad header skips the frames (one exit only: every return of this tuple costs compile time).
    frames = num_frames if status == _OK else 0
    bodies_per_frame = np.zeros(frames, np.int32)
    for f in range(frames):
        item = _ITEM_BODY_COUNT
        b = j = 0
        status, nbody, p, line, bad, detail = _next_int(buf, p, line)
        if status == _OK and nbody < 0:
            status = _NEGATIVE
        if status != _OK:
            break
        bodies_per_frame[f] = nbody
        for b in range(nbody):
            item = _ITEM_BODY_LINE
            j = 0
            status, bid, p, line, bad, detail = _next_int(buf, p, line)
            if status != _OK:
                break
            count, p, bad = _skip_fields(buf, p)
            if bad >= 0 or count != _BODY_FIELDS - 1:
                status = _BAD_TOKEN if bad >= 0 else _FIELD_COUNT
                detail = count + 1
                break
            item = _ITEM_JOINT_COUNT
            status, njoint, p, line, bad, detail = _next_int(buf, p, line)
            if status != _OK:
                break
            count, p, bad = _skip_fields(buf, p)
            if count != 0 or bad >= 0:
                status = _FIELD_COUNT if bad < 0 else _BAD_TOKEN
                detail = count + 1
                break
            if njoint != 25:
                status, detail = _JOINT_COUNT, njoint
                break
            if nb >= cap:  # cannot happen for a well-formed file; the next token check reports it
                status = _EOF
                break
            body_id[nb] = bid
            frame_of[nb] = f
            slot[nb] = b
            item = _ITEM_JOINT_LINE
            for j in range(25):
                p, line = _skip_blank(buf, p, line)
                if p >= buf.size:
                    status = _EOF
                    break
                starts[recorded], lines[recorded] = p, line
                recorded += 1
                count, p, bad = _skip_fields(buf, p)
                if bad >= 0 or count != _JOINT_FIELDS:
                    status = _BAD_TOKEN if bad >= 0 else _FIELD_COUNT
                    detail = count
                    break
            if status != _OK:
                break
            nb += 1
        if status != _OK:
            break
    if status == _FIELD_COUNT and p >= buf.size:
        status = _EOF  # a line cut short by the end of the file
    if status == _OK:
        count, q, bad = _skip_fields(buf, p)
        if count != 0 or bad >= 0:
            status, detail = (_FIELD_COUNT if bad < 0 else _BAD_TOKEN), count + 1
        else:
            p, line = _skip_blank(buf, q, line)
            if p < buf.size:
                status = _TRAILING
    return (status, item, line, bad, detail, f, b, j, num_frames, nb, bodies_per_frame,
            body_id[:nb].copy(), frame_of[:nb].copy(), slot[:nb].copy(), starts[:recorded].copy(),
            lines[:recorded].copy())


@njit(cache=True, nogil=True)
def _parse_joints(buf, starts, xyz):
    """x, y, z of the joint line at each of ``starts`` into ``xyz`` (n, 3) float32. Returns (index of the first
    line whose first three fields are not three numbers or -1, status, bad_pos, detail, end position)."""
    n = buf.size
    for k in range(starts.size):
        p = starts[k]
        for c in range(3):
            v, p, ok = _parse_float(buf, p)
            if not ok:
                break
            xyz[k, c] = v
            p = _skip_spaces(buf, p)
            if c < 2 and (p >= n or _CLASS[buf[p]] == _NEWLINE):
                ok = False
                break
        if not ok:
            if p >= n or _CLASS[buf[p]] == _NEWLINE or _CLASS[buf[p]] == _SPACE:
                return k, _FIELD_COUNT, -1, c + 1, p
            return k, _BAD_TOKEN, p, 0, p
    return -1, _OK, -1, 0, 0



def _token_at(buf: np.ndarray, pos: int) -> str:
    end = pos
    while end < buf.size and _CLASS[buf[end]] not in (_SPACE, _NEWLINE) and end - pos < 40:
        end += 1
    start = pos
    while start > 0 and _CLASS[buf[start - 1]] not in (_SPACE, _NEWLINE) and pos - start < 40:
        start -= 1
    return repr(bytes(buf[start:end]).decode("latin-1"))


def _compile_plan() -> dict:
    """``jit.call``'s plan for ``_parse_bytes``: its costliest callees (``parts``) and ``_parse_joints``, which
    does not depend on it (``siblings``): pool workers starting together compile the two kernels side by side."""
    from numba import types

    buf, i = types.Array(types.uint8, 1, "C", readonly=True), types.int64
    joints = (buf, types.Array(types.int64, 1, "C"), types.Array(types.float32, 2, "C"))
    return {"siblings": ((_parse_joints, joints),),
            "parts": ((_next_int, (buf, i, i)), (_skip_fields, (buf, i)), (_parse_int, (buf, i)))}


def parse_skeleton(buf: np.ndarray | bytes, path: str = "<bytes>") -> SkeletonFile:
    """Parse the bytes of one ``.skeleton`` file; raise SkeletonParseError naming the line on bad input."""
    buf = np.frombuffer(buf, dtype=np.uint8) if not isinstance(buf, np.ndarray) else buf.view()
    buf.flags.writeable = False  # one compiled signature (read-only uint8) for bytes and file arrays alike
    (status, item, line, bad, detail, f, b, j, num_frames, nb,
     bodies_per_frame, body_id, frame_of, slot, starts, lines) = jit.call(_parse_bytes, buf, **_compile_plan())
    xyz = np.empty((len(starts), 3), np.float32)
    k, joint_status, joint_bad, joint_detail, end = jit.call(_parse_joints, buf, starts, xyz)
    if k >= 0 and (status == _OK or lines[k] <= line):  # the first three fields come first on their line
        status, item, line, j = joint_status, _ITEM_JOINT_LINE, int(lines[k]), k % 25
        bad, detail = joint_bad, joint_detail
        if k // 25 < nb:
            f, b = frame_of[k // 25], slot[k // 25]
        if status == _FIELD_COUNT and end >= buf.size:
            status = _EOF  # a line cut short by the end of the file
    if status == _OK:
        return SkeletonFile(int(num_frames), bodies_per_frame, body_id, frame_of, slot, xyz.reshape(-1, JOINTS, 3))
    where = {
        _ITEM_FRAME_COUNT: "",
        _ITEM_BODY_COUNT: f" of frame {f + 1}/{num_frames}",
        _ITEM_BODY_LINE: f" for body {b + 1} of frame {f + 1}/{num_frames}",
        _ITEM_JOINT_COUNT: f" for body {b + 1} of frame {f + 1}/{num_frames}",
        _ITEM_JOINT_LINE: f" (joint {j + 1}/25 of body {b + 1}, frame {f + 1}/{num_frames})",
    }[item]
    what = _ITEM_TEXT[item] + where
    if status == _TOO_MANY:
        raise SkeletonParseError(path, line, f"a frame count the file's {buf.size} bytes can hold (at most {detail})",
                                 f"{num_frames}")
    if status == _JOINT_COUNT:
        raise SkeletonParseError(path, line, f"25 joints{where}", f"{detail}")
    if status == _FIELD_COUNT:
        fields = {_ITEM_BODY_LINE: _BODY_FIELDS, _ITEM_JOINT_LINE: _JOINT_FIELDS}.get(item, 1)
        raise SkeletonParseError(path, line, f"{fields} field(s) on {what}", f"{detail}")
    if status == _BAD_TOKEN:
        found = _token_at(buf, bad) if bad >= 0 else ""
        raise SkeletonParseError(path, line, f"a number in {what}", found)
    if status == _EOF:
        raise SkeletonParseError(path, line, f"{what}, but the file ends")
    raise SkeletonParseError(path, line, _STATUS_TEXT[status] if status == _TRAILING else f"{_STATUS_TEXT[status]} as {what}")


def read_skeleton(path) -> SkeletonFile:
    """Read and parse one ``.skeleton`` file (CRLF or LF, any body count, NaN tokens, exact int64 bodyIDs)."""
    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise SkeletonParseError(path, 0, "a readable file", exc.strerror or str(exc)) from None
    return parse_skeleton(buf, str(path))
