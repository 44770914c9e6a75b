"""Tolerances that hold on any x86-64 CPU and BLAS.

Two float32 computations of the same quantity that differ only in batch size, kernel choice
or CPU (AVX2 vs AVX-512, MKL vs OpenBLAS, Intel vs AMD) agree to round-off, not bit for bit.
A fixed absolute tolerance such as 1e-6 is a guess at that round-off; these helpers scale it
to the float32 epsilon of the quantity's own magnitude instead. Use exact equality only where
both sides run the same sequence of operations on the same inputs.
"""

from __future__ import annotations

import numpy as np
import torch

F32_EPS = float(np.finfo(np.float32).eps)  # 1.19e-7


def f32_atol(reference, ulps: float = 256) -> float:
    """`ulps` float32 epsilons of the reference's largest magnitude (at least of 1.0).

    256 ulps covers the reassociation of sums over a few thousand terms (a convolution or a
    matrix product through a handful of layers) with room to spare, and is still far below
    any difference a real bug would make (1e-3 and more).
    """
    values = reference.detach().cpu().numpy() if isinstance(reference, torch.Tensor) else reference
    scale = max(float(np.max(np.abs(np.asarray(values, dtype=np.float64)))), 1.0)
    return ulps * F32_EPS * scale


def assert_f32_close(actual, expected, ulps: float = 256) -> None:
    """Elementwise |actual - expected| <= f32_atol(expected, ulps), for numpy or torch."""
    to_np = lambda x: x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)  # noqa: E731
    np.testing.assert_allclose(
        to_np(actual), to_np(expected), rtol=0, atol=f32_atol(expected, ulps)
    )
