"""The `why` of each right-sizing recommendation, and the recommendations frame `rightsize` returns.

A recommendation explains itself (STYLE principle 10): which constraint decided the CPU request (the class's risk
bound at an in-sample level of the last window, a namespace budget, or a price on unmet CPU), the risk expected out
of sample and from how many backtest splits, where the memory request and limit come from (quantile, peak, margins,
OOM kills), the monthly cost and, given the current requests, the expected saving.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from aiops.optimize.rightsize_baselines import MIB, OUTPUT_COLUMNS

if TYPE_CHECKING:  # pragma: no cover
    from aiops.optimize.config import RightsizeConfig
    from aiops.optimize.rightsize import _Workload


def recommendations_frame(work: Sequence[_Workload], config: RightsizeConfig, cur: dict | None,
                          extra_columns: Sequence[str]) -> pd.DataFrame:
    """One row per workload: the baselines' columns, then `extra_columns` (in-sample and expected CPU risk, memory
    peak, monthly cost). A workload without enough data gets NaN sizes and `why` = "undefined: <reason>"."""
    rows = []
    for w in work:
        if w.undefined:
            rows.append((w.name, np.nan, np.nan, np.nan, np.nan, f"undefined: {w.undefined}", np.nan, np.nan,
                         w.peak, np.nan))
            continue
        j = w.chosen
        c, r = float(w.cand[j]), float(w.r_in[j])
        monthly = float(w.cost[j] + w.mem_cost)
        why = f"{cpu_why(w, config)}; {memory_why(w, config)}; ${monthly:.2f}/month"
        if cur is not None:
            why += f", saves ${w.current_cost - monthly:.2f}/month against the current requests"
        cpu_limit = c * config.cpu_limit_ratio if config.cpu_limit_ratio else np.nan
        rows.append((w.name, c, cpu_limit, w.mem, w.mem_limit, why, r, float(w.expected[j]), w.peak, monthly))
    return pd.DataFrame(rows, columns=[*OUTPUT_COLUMNS, *extra_columns])


def cpu_why(w: _Workload, config: RightsizeConfig) -> str:
    """What decided the CPU request: the level it sits at in the last window and the constraint that bound."""
    j, target = w.chosen, config.cpu_risk[w.cls]
    c, r = float(w.cand[j]), float(w.r_in[j])
    window = f"{w.window_days:.3g}-day window"
    level = (f"in-sample level p{100 * (1 - r):.1f}" if r > 0
             else f"the peak x {c / max(w.recent_peak, 1e-9):.2f}") + f" of the last {window}"
    why = (f"CPU {c * 1000:.0f}m: class {w.cls!r} target {target:.1%}, expected out-of-sample risk "
           f"{w.expected[j]:.1%} ({w.splits} backtest split(s) + class prior) at {level}")
    if w.unreachable:
        return why + "; target unreachable: the least expected risk of any candidate"
    if j < w.best:
        return why + f"; held below the cost optimum by namespace {w.namespace!r}'s budget/quota"
    if j > w.first:
        return why + f"; above the risk bound's {w.cand[w.first] * 1000:.0f}m: unmet CPU is priced"
    return why + "; decided by the risk bound"


def memory_why(w: _Workload, config: RightsizeConfig) -> str:
    """Where the memory request (a quantile of the history) and the limit (its peak plus margins) come from."""
    bump = config.oom_margin_step * w.ooms
    kills = f" + {w.ooms} OOM kill(s) x {config.oom_margin_step:.0%}" if w.ooms else ""
    q = config.memory_quantile
    level = "peak" if q >= 1 else f"p{100 * q:g}"
    margin = f" + {config.memory_margin:.0%}" if config.memory_margin else ""
    why = f"memory {w.mem / MIB:.0f}Mi: {level} of the history {w.mem_level / MIB:.1f}Mi{margin}{kills}"
    by_peak = w.peak * (1 + config.memory_limit_margin + bump)
    if by_peak >= w.mem * config.memory_limit_ratio:
        why += (f", limit {w.mem_limit / MIB:.0f}Mi: the peak {w.peak / MIB:.1f}Mi + "
                f"{config.memory_limit_margin:.0%}{kills}")
    else:
        why += f", limit {w.mem_limit / MIB:.0f}Mi: the request x {config.memory_limit_ratio:g}"
    return why
