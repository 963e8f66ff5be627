"""Pattern novelty: how far the latest short shape of a series is from its nearest neighbour in the recent past.

    d[t] = min over earlier windows W_i of ||W_t - W_i|| / sqrt(m),   W_t = x[t-m+1 .. t]

where the earlier windows end at least m rows before t (no overlap, so a window never matches a shifted copy of
itself) and at most `history` rows before it. This is the causal ("left") matrix profile: a shape never seen before
(a new rhythm, a changed daily profile, a stuck value, a level never visited) is far from everything in the past,
while a spike the series has shown many times is not. Values are not z-normalised per window, so levels count too.

Cost: O(n * history) per series, by the sliding dot-product recurrence of STOMP
(dot(W_j, W_t) = dot(W_{j-1}, W_{t-1}) - x[j-1] x[t-1] + x[j+m-1] x[t+m-1]) over a band of `history` windows,
recomputed exactly every `_REFRESH` rows so rounding cannot drift.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

_REFRESH = 512  # rows between exact recomputations of the band's dot products


def left_nn_distance(x: np.ndarray, length: int, history: int) -> np.ndarray:
    """d[t] as above for a 1-D float array (no NaN); NaN until the first window has a neighbour."""
    x = np.asarray(x, dtype=np.float64)
    m, n = int(length), len(x)
    if m < 1 or history < 1:
        raise ValueError(f"length and history: expected whole numbers >= 1, received {length} and {history}")
    out = np.full(n, np.nan)
    if n < 2 * m:
        return out
    band = int(history) + m  # windows j in [t - band + 1, t]: the candidates plus the excluded overlap
    # zero padding in front keeps the recurrence exact at the start; padded windows are masked out below
    xp = np.concatenate([np.zeros(band), x])
    windows = sliding_window_view(xp, m)  # window j (padded index) covers xp[j .. j+m-1]
    sq = np.einsum("ij,ij->i", windows, windows)
    first_real = band  # padded index of the window starting at x[0]
    offsets = np.arange(-band + 1, 1)  # band positions relative to t
    qt = None
    for t in range(first_real, len(windows)):
        if qt is None or (t - first_real) % _REFRESH == 0:
            qt = windows[t - band + 1: t + 1] @ windows[t]
        else:
            j = t + offsets  # new band; the old one held j - 1 at the same positions
            qt = qt - xp[j - 1] * xp[t - 1] + xp[j + m - 1] * xp[t + m - 1]
        cand = qt[: band - m]  # windows ending at least m rows before t
        j0 = t - band + 1
        lo = max(first_real - j0, 0)  # padded windows are not neighbours
        if lo >= len(cand):
            continue
        d2 = sq[j0 + lo: j0 + len(cand)] + sq[t] - 2.0 * cand[lo:]
        out[t - first_real + m - 1] = np.sqrt(max(float(d2.min()), 0.0) / m)
    return out
