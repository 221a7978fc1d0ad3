"""Chapter 8's reading of ``cost``'s timings: the tables they are shown in, the values the text quotes
(``book.Quotes``) and the two figures.

``cost`` measures (refits, training steps, bf16 against float32, OGC's state); this module only reads what it
returns, so the chapter shows the measuring calls and the tables, and nothing here times anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from torch import nn

from . import plotting
from .book import Quotes
from .cost import SKLEARN_METHOD, precision_sentences
from .registry import check_choice

Timing = dict[str, Any]  # what a cost.time_* function returns
REFIT_KEYS = {"torch exact": "exact", "torch grid": "grid", SKLEARN_METHOD: "reference"}  # method -> its glue names
MODEL_KEYS = {"cnn-small": "digits"}  # a timed model's name in the text's glue names, where not its own
STEP_COLUMNS = {"model": "model", "batch": "batch", "ce_ms": "CE ms", "ogc_ms": "CE+OGC ms", "refit_ms": "refit ms",
                "refit_timed": "refit timed", "ratio": "ratio"}  # the step table: the columns a reader compares


def machine_quotes(machine: dict[str, Any], threads: int) -> Quotes:
    """What the timings ran on, as the text states it (``cost.machine_info`` and the threads they used)."""
    return {
        "machine": (machine, None), "device": (machine["device"], None), "device_name": (machine["device_name"], None),
        "threads": (threads, None), "cpu_count": (machine["cpu_count"], None),
        "torch_version": (machine["torch"], None), "date": (machine["date"][:10], None),
    }


# ---- the refit ---------------------------------------------------------------------------------------


def _relative(tau: float, to: float) -> float:
    """|tau - to| / to: how far one method's threshold lies from another's."""
    return abs(tau - to) / to


def refit_table(refit: Timing, fine_tau: float) -> pd.DataFrame:
    """One row per refit method (``cost.time_refit``): median ms, speed-up over scikit-learn's refit, tau, and its
    relative difference to scikit-learn's tau and to ``fine_tau`` (a fine grid's)."""
    methods = refit["methods"]
    sklearn_tau = methods[SKLEARN_METHOD]["tau"]
    return pd.DataFrame([
        {"method": name, "ms": f"{m['seconds'] * 1e3:.3f}", "speed-up vs reference": f"{m['speedup']:.1f}",
         "τ": f"{m['tau']:.6f}", "rel. diff to reference": f"{_relative(m['tau'], sklearn_tau):.1e}",
         "rel. diff to 200k grid": f"{_relative(m['tau'], fine_tau):.1e}"}
        for name, m in methods.items()
    ])


def refit_quotes(refit: Timing, fine_tau: float, interval: int) -> Quotes:
    """Each method's refit time and tau (``REFIT_KEYS``), the torch paths' speed-up over scikit-learn's and their
    distance to its tau, the closed form's distance to ``fine_tau``, and a refit spread over ``interval`` steps."""
    methods = refit["methods"]
    sklearn, exact = methods[SKLEARN_METHOD], methods["torch exact"]
    quotes: Quotes = {"refit_methods": (methods, None), "refit_target": (refit["target"], "g"),
                      "refit_repeats": (refit["repeats"], None), "tau_fine_grid": (fine_tau, ".6f")}
    for name, key in REFIT_KEYS.items():
        quotes[f"refit_ms_{key}"] = (methods[name]["seconds"] * 1e3, ".2f")
        quotes[f"tau_{key}"] = (methods[name]["tau"], ".6f")
        if name != SKLEARN_METHOD:
            quotes[f"speedup_{key}"] = (methods[name]["speedup"], ".1f")
            quotes[f"tau_rel_diff_{key}"] = (_relative(methods[name]["tau"], sklearn["tau"]), ".1e")
    quotes["tau_rel_diff_exact_fine"] = (_relative(exact["tau"], fine_tau), ".1e")
    quotes["refit_per_step_ms_exact"] = (exact["seconds"] * 1e3 / interval, ".3f")
    quotes["refit_per_step_ms_reference"] = (sklearn["seconds"] * 1e3 / interval, ".3f")
    return quotes


def plot_refit(refit: Timing) -> Figure:
    """One bar per refit method: its median ms, labelled with the ms and the tau it found."""
    import matplotlib.pyplot as plt

    methods = refit["methods"]
    names = list(methods)
    fig, ax = plt.subplots(figsize=plotting.size(1, row_height=2.2))
    ax.barh(names, [methods[n]["seconds"] * 1e3 for n in names], color=[plotting.color(i) for i in range(len(names))])
    for i, n in enumerate(names):
        label = f"  {methods[n]['seconds'] * 1e3:.2f} ms, $\\tau$ = {methods[n]['tau']:.4f}"
        ax.text(methods[n]["seconds"] * 1e3, i, label, va="center")
    ax.set(xlabel="milliseconds per refit (median)", xlim=(0, 1.6 * max(m["seconds"] for m in methods.values()) * 1e3))
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    return fig


# ---- training steps ----------------------------------------------------------------------------------


def step_row(timing: Timing) -> dict[str, Any]:
    """CE against CE+OGC in one ``cost.time_training_steps`` timing: their steps in ms, OGC's refit and how it was
    timed, the ratio (and the ratio of mean steps, refits and outliers included), and the spread of CE's steps."""
    ce, ogc = timing["arms"]["ce"], timing["arms"]["ce+ogc"]
    return {
        "model": timing["model"], "batch": timing["batch"], "warmup_steps": timing["warmup_steps"],
        "steps_per_arm": timing["steps_per_arm"], "ce_ms": ce["median_step_s"] * 1e3,
        "ogc_plain_ms": ogc["plain_step_s"] * 1e3, "refit_ms": ogc["refit_s"] * 1e3, "refit_timed": ogc["refit_timed"],
        "refits_timed": ogc["refits_timed"], "ogc_ms": ogc["step_s"] * 1e3, "ratio": ogc["ratio"],
        "ratio_of_means": ogc["mean_step_s"] / ce["mean_step_s"],
        "ce_spread_ms": (max(ce["step_times_s"]) - min(ce["step_times_s"])) * 1e3,
    }


def step_table(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The step rows with ``STEP_COLUMNS`` (seven fit the page's width; metrics.json keeps every field)."""
    return pd.DataFrame(rows)[list(STEP_COLUMNS)].rename(columns=STEP_COLUMNS)


def step_quotes(rows: Sequence[dict[str, Any]]) -> Quotes:
    """The rows, and per model (named by ``MODEL_KEYS``) its ratio, both steps, OGC's overhead and refit, CE's
    spread, how the refit was timed, the steps timed and the batch."""
    quotes: Quotes = {"step_rows": (list(rows), None)}
    for row in rows:
        key = MODEL_KEYS.get(row["model"], row["model"])
        quotes |= {
            f"ratio_{key}": (row["ratio"], ".3f"), f"ce_ms_{key}": (row["ce_ms"], ".4g"),
            f"ogc_ms_{key}": (row["ogc_ms"], ".4g"), f"overhead_ms_{key}": (row["ogc_ms"] - row["ce_ms"], ".3f"),
            f"refit_ms_{key}": (row["refit_ms"], ".2f"), f"ce_spread_ms_{key}": (row["ce_spread_ms"], ".3g"),
            f"refit_timed_{key}": (row["refit_timed"], None), f"steps_{key}": (row["steps_per_arm"], None),
            f"batch_{key}": (row["batch"], None),
        }
    return quotes


def plot_steps(timing: Timing) -> Figure:
    """Every timed step of both arms in the order they ran, the OGC steps that refitted circled."""
    import matplotlib.pyplot as plt

    arms = {name: np.array(timing["arms"][name]["step_times_s"]) * 1e3 for name in ("ce", "ce+ogc")}
    fig, ax = plt.subplots(figsize=plotting.size(1, row_height=2.8))
    for name, times in arms.items():
        ax.plot(np.arange(1, len(times) + 1), times, ".", ms=4, color=plotting.loss_color(name), label=name.upper())
    ogc_times = arms["ce+ogc"]
    first = timing["warmup_steps"] + 1  # the OGC loss's step count at the first timed step
    refit_at = [i for i in range(1, len(ogc_times) + 1) if (first + i - 1) % timing["interval"] == 0]
    ax.plot(refit_at, ogc_times[np.array(refit_at, dtype=int) - 1], "o", mfc="none", ms=9, color="black",
            label="OGC step with a refit")
    ax.set(xlabel="timed step (CE and OGC steps alternate)", ylabel="ms",
           ylim=(0, 1.5 * np.percentile(np.concatenate([ogc_times, arms["ce"]]), 99)))
    ax.legend(ncol=3, loc="lower right")
    return fig


# ---- bf16 against float32 ----------------------------------------------------------------------------


def precision_table(precision: Sequence[Timing]) -> pd.DataFrame:
    """One row per model (``cost.time_precision_steps``): float32 and bf16 ms and the speed-up."""
    return pd.DataFrame([{"model": p["model"], "float32 ms": 1e3 * p["float32_step_s"],
                          "bf16 ms": 1e3 * p["bf16_step_s"], "speed-up": p["speedup"]} for p in precision])


def precision_quotes(precision: Sequence[Timing], batch: int) -> Quotes:
    """The timings, whether the machine has native bf16, each model's steps and speed-up, and what they mean
    there in words (``cost.precision_sentences``)."""
    words = precision_sentences(precision)
    quotes: Quotes = {"precision_batch": (batch, None), "precision": (list(precision), None),
                      "native_bf16": (bool(precision[0]["native_bf16"]), None),
                      "native_bf16_text": ("yes" if precision[0]["native_bf16"] else "no", None),
                      "precision_verdict": (words["verdict"], None), "precision_summary": (words["summary"], None)}
    for p in precision:
        quotes[f"precision_speedup_{p['model']}"] = (p["speedup"], ".1f")
        quotes[f"precision_f32_ms_{p['model']}"] = (1e3 * p["float32_step_s"], ".0f")
        quotes[f"precision_bf16_ms_{p['model']}"] = (1e3 * p["bf16_step_s"], ".0f")
    return quotes


# ---- OGC's state -------------------------------------------------------------------------------------


def state_table(queue_sizes: Sequence[int], states: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Per queue size, the bytes of the queue and of OGC's whole state (``cost.ogc_state_bytes``)."""
    return pd.DataFrame({"queue size q": [f"{q:,}" for q in queue_sizes],
                         "queue bytes": [f"{s['queue_bytes']:,}" for s in states],
                         "total state bytes": [f"{s['total_bytes']:,}" for s in states]})


def state_quotes(queue_sizes: Sequence[int], states: Sequence[dict[str, Any]], default_q: int,
                 resnet18: nn.Module) -> Quotes:
    """The state's bytes per queue size; at ``default_q`` its total, the part that does not grow with q, the
    bytes per queued value, and its share of the parameter bytes of ``resnet18`` (the model the text names)."""
    check_choice("queue size", default_q, queue_sizes, hint="the default must be one of the sizes measured")
    default = states[list(queue_sizes).index(default_q)]
    model_bytes = sum(p.numel() * p.element_size() for p in resnet18.parameters())
    return {
        "state_queue_sizes": (list(queue_sizes), None),
        "state_total_bytes": ([s["total_bytes"] for s in states], None),
        "state_queue_bytes": ([s["queue_bytes"] for s in states], None), "state_dtype": (states[0]["dtype"], None),
        "state_bytes_4096": (default["total_bytes"], ","),
        "state_fixed_bytes": (default["total_bytes"] - default["queue_bytes"], ","),
        "bytes_per_value": (default["queue_bytes"] // default_q, None),
        "resnet18_param_bytes": (model_bytes, ","),
        "state_share_of_resnet18": (default["total_bytes"] / model_bytes, ".2%"),
    }
