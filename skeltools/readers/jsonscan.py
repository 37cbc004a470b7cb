"""A numba JSON scanner: a whole document (uint8 bytes) -> a flat token tape, for readers of fixed grammars.

The scanner accepts a strict subset of what Python's ``json`` accepts: ASCII only, no ``NaN``/``Infinity``
literals, nesting at most ``MAX_DEPTH``. Anything else (including every malformed document) is refused, and the
reader then runs ``json`` on the same bytes, which gives its usual error message. Within the subset, a number's
``value`` is exactly ``np.float32(float(text))``: a number whose float32 value cannot be proven so (more than 19
significant digits, a float32 overflow, or a double so near a float32 rounding boundary that the fast
computation's error could cross it) is marked not ``EXACT`` and readers fall back for it.

Tape (one row per token, in document order): ``kind``; ``pos``/``stop`` the token's bytes (a container's span
included); ``after`` the index of the token following the value (a container's contents are skipped by jumping
there); ``value`` (float32) and ``ival`` (int64, integer syntax) of numbers; ``flags``. An object's members are its
key (a STRING) followed by the value.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from skeltools import jit  # noqa: F401  (picks numba's cache folder before the kernels are defined)

OBJECT, ARRAY, STRING, NUMBER, LITERAL = 1, 2, 3, 4, 5
INTEGER, EXACT, ESCAPED = 1, 2, 4  # flags: integer syntax; number value proven; string holds a backslash escape
MAX_DEPTH = 64

_VALUE, _KEY, _AFTER = 0, 1, 2
_POW10 = np.array([10.0**k for k in range(23)], dtype=np.float64)
_TWO53 = 2**53
_ESCAPES = np.zeros(256, np.uint8)
for _c in b'"\\/bfnrt':
    _ESCAPES[_c] = 1
_HEX = np.zeros(256, np.uint8)
for _c in b"0123456789abcdefABCDEF":
    _HEX[_c] = 1


@njit(cache=True, nogil=True)
def _ws(buf, p):
    n = buf.size
    while p < n and (buf[p] == 32 or buf[p] == 10 or buf[p] == 13 or buf[p] == 9):
        p += 1
    return p


@njit(cache=True, nogil=True)
def _string(buf, p):
    """The string starting at the quote ``p`` -> (end after the closing quote, escaped); end -1 if refused."""
    n = buf.size
    p += 1
    escaped = False
    while p < n:
        c = buf[p]
        if c == 34:
            return p + 1, escaped
        if c < 32 or c >= 128:
            return -1, escaped
        if c == 92:
            escaped = True
            if p + 1 >= n:
                return -1, escaped
            e = buf[p + 1]
            if e == 117:  # \uXXXX
                if p + 5 >= n:
                    return -1, escaped
                for q in range(p + 2, p + 6):
                    if _HEX[buf[q]] == 0:
                        return -1, escaped
                p += 6
                continue
            if _ESCAPES[e] == 0:
                return -1, escaped
            p += 2
            continue
        p += 1
    return -1, escaped


@njit(cache=True, nogil=True)
def _to_float32(mant, exp10, neg):
    """float32 of ``mant * 10**exp10`` (mant > 0, at most 19 digits) -> (value, exact)."""
    if mant <= _TWO53 and -22 <= exp10 <= 22:  # Clinger's fast path: one correctly rounded operation
        d = float(mant)
        d = d / _POW10[-exp10] if exp10 < 0 else d * _POW10[exp10]
        f = np.float32(-d if neg else d)
        return f, bool(np.isfinite(f))
    if exp10 < -66 or exp10 > 44:
        return np.float32(0.0), False
    # At most 5 roundings of relative error 2**-53 each; accept when the whole error interval rounds to one float32.
    d = float(mant)
    e = exp10
    while e < -22:
        d /= _POW10[22]
        e += 22
    while e > 22:
        d *= _POW10[22]
        e -= 22
    d = d / _POW10[-e] if e < 0 else d * _POW10[e]
    if not 1e-30 < d < 1e30:
        return np.float32(0.0), False
    w = d * 2.0**-49
    lo, hi = np.float32(d - w), np.float32(d + w)
    if lo != hi:
        return np.float32(0.0), False
    return (-lo if neg else lo), True


@njit(cache=True, nogil=True)
def _number(buf, p):
    """The JSON number at ``p`` -> (end, value, ival, flags); end -1 if it is not JSON number syntax."""
    n = buf.size
    neg = buf[p] == 45
    if neg:
        p += 1
    if p >= n or not 48 <= buf[p] <= 57:
        return -1, np.float32(0.0), 0, 0
    mant = np.uint64(0)
    sig = 0  # significant digits read (leading zeros excluded)
    exp10 = 0
    if buf[p] == 48:
        p += 1
    else:
        while p < n and 48 <= buf[p] <= 57:
            mant = mant * np.uint64(10) + np.uint64(buf[p] - 48)
            sig += 1
            if sig > 19:
                mant = np.uint64(0)  # too long: marked inexact below, only the syntax is checked
            p += 1
    integer = True
    if p < n and buf[p] == 46:
        integer = False
        p += 1
        if p >= n or not 48 <= buf[p] <= 57:
            return -1, np.float32(0.0), 0, 0
        while p < n and 48 <= buf[p] <= 57:
            if sig <= 19:
                mant = mant * np.uint64(10) + np.uint64(buf[p] - 48)
                exp10 -= 1
                if mant > 0:
                    sig += 1
            p += 1
    if p < n and (buf[p] == 101 or buf[p] == 69):
        integer = False
        p += 1
        eneg = False
        if p < n and (buf[p] == 45 or buf[p] == 43):
            eneg = buf[p] == 45
            p += 1
        if p >= n or not 48 <= buf[p] <= 57:
            return -1, np.float32(0.0), 0, 0
        e = 0
        while p < n and 48 <= buf[p] <= 57:
            if e < 100000:
                e = e * 10 + (buf[p] - 48)
            p += 1
        exp10 += -e if eneg else e
    flags = INTEGER if integer else 0
    if sig > 19:
        return p, np.float32(0.0), 0, flags
    if mant == 0:  # json: "-0" is the int 0, "-0.0" the float -0.0
        return p, np.float32(-0.0 if neg and not integer else 0.0), 0, flags | EXACT
    if integer:
        if mant > _TWO53:  # not provably the conversion numpy does from a big Python int
            return p, np.float32(0.0), 0, flags
        ival = np.int64(mant)
        return p, np.float32(-float(mant) if neg else float(mant)), (-ival if neg else ival), flags | EXACT
    value, exact = _to_float32(mant, exp10, neg)
    return p, value, 0, flags | (EXACT if exact else 0)


@njit(cache=True, nogil=True)
def scan(buf):
    """Tokenize and validate a whole JSON document.

    Returns (ok, count, kind, pos, stop, after, value, ival, flags); ``ok`` is False when the document is outside
    the accepted subset (then the tape is meaningless).
    """
    n = buf.size
    cap = n // 2 + 2
    kind = np.empty(cap, np.int8)
    pos = np.empty(cap, np.int64)
    stop = np.empty(cap, np.int64)
    after = np.empty(cap, np.int64)
    value = np.empty(cap, np.float32)
    ival = np.empty(cap, np.int64)
    flags = np.zeros(cap, np.int8)
    stack = np.empty(MAX_DEPTH, np.int64)
    depth = 0
    nt = 0
    state = _VALUE
    p = 0
    while True:
        p = _ws(buf, p)
        if state == _AFTER:
            if depth == 0:
                return p == n, nt, kind, pos, stop, after, value, ival, flags
            if p >= n:
                break
            c = buf[p]
            top = stack[depth - 1]
            if c == 44:  # ,
                p += 1
                state = _KEY if kind[top] == OBJECT else _VALUE
            elif (c == 125 and kind[top] == OBJECT) or (c == 93 and kind[top] == ARRAY):
                depth -= 1
                stop[top] = p + 1
                after[top] = nt
                p += 1
            else:
                break
            continue
        if p >= n:
            break
        c = buf[p]
        if state == _KEY:
            if c != 34:
                break
            q, esc = _string(buf, p)
            if q < 0:
                break
            kind[nt], pos[nt], stop[nt], after[nt] = STRING, p, q, nt + 1
            flags[nt] = ESCAPED if esc else 0
            nt += 1
            p = _ws(buf, q)
            if p >= n or buf[p] != 58:  # :
                break
            p += 1
            state = _VALUE
            continue
        # a value
        kind[nt], pos[nt], after[nt] = 0, p, nt + 1
        if c == 123 or c == 91:  # { [
            if depth == MAX_DEPTH:
                break
            kind[nt] = OBJECT if c == 123 else ARRAY
            stack[depth] = nt
            depth += 1
            nt += 1
            p = _ws(buf, p + 1)
            if p < n and buf[p] == c + 2:  # } ]: empty
                depth -= 1
                stop[nt - 1] = p + 1
                after[nt - 1] = nt
                p += 1
                state = _AFTER
            else:
                state = _KEY if c == 123 else _VALUE
            continue
        if c == 34:
            q, esc = _string(buf, p)
            if q < 0:
                break
            kind[nt] = STRING
            flags[nt] = ESCAPED if esc else 0
        elif c == 45 or 48 <= c <= 57:
            q, v, iv, fl = _number(buf, p)
            if q < 0:
                break
            kind[nt], value[nt], ival[nt], flags[nt] = NUMBER, v, iv, fl
        else:
            q = -1
            for word in (_TRUE, _FALSE, _NULL):
                if p + word.size <= n and (buf[p:p + word.size] == word).all():
                    q = p + word.size
            if q < 0:
                break
            kind[nt] = LITERAL
        stop[nt] = q
        nt += 1
        p = q
        state = _AFTER
    return False, nt, kind, pos, stop, after, value, ival, flags


_TRUE = np.frombuffer(b"true", np.uint8).copy()
_FALSE = np.frombuffer(b"false", np.uint8).copy()
_NULL = np.frombuffer(b"null", np.uint8).copy()


def key_bytes(name: str) -> np.ndarray:
    """An object key as the quoted bytes the scanner compares against."""
    return np.frombuffer(f'"{name}"'.encode(), np.uint8).copy()


@njit(cache=True, nogil=True)
def is_key(buf, pos, stop, flags, i, key):
    """Whether tape token ``i`` is the unescaped key ``key`` (from :func:`key_bytes`)."""
    s = pos[i]
    if stop[i] - s != key.size or flags[i] & ESCAPED:
        return False
    for j in range(key.size):
        if buf[s + j] != key[j]:
            return False
    return True


@njit(cache=True, nogil=True)
def exact_numbers(kind, after, flags, a, count):
    """Whether tape token ``a`` is an array of exactly ``count`` numbers, each EXACT."""
    if kind[a] != ARRAY or after[a] - a - 1 != count:
        return False
    for j in range(a + 1, after[a]):
        if kind[j] != NUMBER or not flags[j] & EXACT:
            return False
    return True
