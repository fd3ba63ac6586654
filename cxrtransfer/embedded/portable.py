"""Elementary functions that give the same bits on every CPU, for the generators' pixel arithmetic.

numpy picks its cos, arctan2, hypot and power kernels at run time by CPU (AVX512 machines use vector
kernels whose last bit differs from the scalar ones), so an image drawn with them differs between
machines, and a JPEG with one pixel flipped has a different hash. These functions use only +, -, *, /,
sqrt, floor and ldexp, which IEEE 754 rounds exactly on every CPU, in float64 (about 1e-15 from
numpy's values: accuracy is not the point, bit-identical output is).
"""

from __future__ import annotations

import math

import numpy as np

_LN2 = 0.6931471805599453


def _horner(x: np.ndarray, coefficients: list[float]) -> np.ndarray:
    """sum(c_i x^i), evaluated without fused multiply-adds (numpy applies one ufunc at a time)."""
    out = np.full_like(x, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        out = out * x + c
    return out


_COS_TAYLOR = [(-1.0) ** k / math.factorial(2 * k) for k in range(12)]  # cos on [-pi/2, pi/2], error < 1e-17


def cos_turns(t: np.ndarray | float) -> np.ndarray:
    """cos(2 pi t), any real t (float64 array)."""
    t = np.asarray(t, dtype=np.float64)
    half_angle = (t - np.floor(t + 0.5)) * math.pi  # cos(2a) = 2 cos(a)^2 - 1 with |a| <= pi/2
    c = _horner(half_angle * half_angle, _COS_TAYLOR)
    return 2.0 * c * c - 1.0


def cos(x: np.ndarray | float) -> np.ndarray:
    """cos(x) in radians."""
    return cos_turns(np.asarray(x, dtype=np.float64) * (1 / (2 * math.pi)))


def sin(x: np.ndarray | float) -> np.ndarray:
    """sin(x) in radians."""
    return cos_turns(np.asarray(x, dtype=np.float64) * (1 / (2 * math.pi)) - 0.25)


def hypot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """sqrt(x^2 + y^2) (no overflow guard: drawing coordinates are small)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return np.sqrt(x * x + y * y)


def _atan_unit(a: np.ndarray) -> np.ndarray:
    """atan(a) for 0 <= a <= 1: halve the angle twice (a -> a / (1 + sqrt(1 + a^2))), then a series."""
    for _ in range(2):
        a = a / (1.0 + np.sqrt(1.0 + a * a))
    # |a| <= tan(pi/16) ~ 0.199: the odd series to a^23 is exact to about 1e-18.
    a2 = a * a
    series = _horner(a2, [(-1.0) ** k / (2 * k + 1) for k in range(12)])
    return 4.0 * a * series


def atan2(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The angle of (x, y) in (-pi, pi], as numpy.arctan2 (atan2(0, 0) = 0)."""
    y, x = np.broadcast_arrays(np.asarray(y, dtype=np.float64), np.asarray(x, dtype=np.float64))
    ay, ax = np.abs(y), np.abs(x)
    big, small = np.maximum(ay, ax), np.minimum(ay, ax)
    ratio = np.divide(small, big, out=np.zeros_like(big), where=big > 0)
    angle = _atan_unit(ratio)
    angle = np.where(ay > ax, math.pi / 2 - angle, angle)
    angle = np.where(x < 0, math.pi - angle, angle)
    return np.where(y < 0, -angle, angle)


_EXP_TAYLOR = [1.0 / math.factorial(k) for k in range(16)]  # exp on |r| <= ln2 / 2, error < 1e-17


def exp(x: np.ndarray | float) -> np.ndarray:
    """e^x for |x| < 700."""
    x = np.asarray(x, dtype=np.float64)
    n = np.floor(x * (1 / _LN2) + 0.5)
    return np.ldexp(_horner(x - n * _LN2, _EXP_TAYLOR), n.astype(np.int32))


def log(x: np.ndarray | float) -> np.ndarray:
    """ln(x) for x > 0 (-inf at 0)."""
    x = np.asarray(x, dtype=np.float64)
    mantissa, exponent = np.frexp(x)  # x = m 2^e, 0.5 <= m < 1
    low = mantissa < math.sqrt(0.5)  # keep m within [sqrt(1/2), sqrt(2)): |s| <= 0.172
    mantissa = np.where(low, mantissa * 2.0, mantissa)
    exponent = np.where(low, exponent - 1, exponent)
    s = (mantissa - 1.0) / (mantissa + 1.0)  # ln m = 2 atanh(s)
    series = _horner(s * s, [1.0 / (2 * k + 1) for k in range(12)])
    out = 2.0 * s * series + exponent * _LN2
    return np.where(x > 0, out, -np.inf)


def power(x: np.ndarray, p: float) -> np.ndarray:
    """x^p for x >= 0 (0^p = 0 for p > 0)."""
    x = np.asarray(x, dtype=np.float64)
    positive = x > 0
    return np.where(positive, exp(p * log(np.where(positive, x, 1.0))), 0.0)
