#!/usr/bin/python3
"""Plots of a `rarlhf sweep` from its summary.json (one group per grid point x model, seeds averaged):

  pareto.png    mean reward vs mean tail reward, and vs CVaR_alpha: one marker per model, colour =
                KL (last iterations), error bars = std over seeds; the non-dominated groups that
                rarlhf marked (pareto_reward_tail / pareto_reward_cvar) ringed and labelled
  frontier.png  reward vs KL and tail reward vs KL per model, each model's frontier (the groups not
                beaten by one with less KL and more reward: frontier_reward_kl / frontier_tail_kl)
                joined by a line

The flags come from rarlhf (src/pipeline/sweep.cpp); this script only draws them.
Needs Debian's /usr/bin/python3 with python3-matplotlib (Agg backend, no display).
Usage: plot_sweep.py SUMMARY.json --out DIR
"""
import argparse
import json
import math
import os
import sys
import tempfile


def fail(msg):
    print(f"plot_sweep: error: {msg}", file=sys.stderr)
    sys.exit(1)


try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    fail("matplotlib is not installed; install python3-matplotlib (apt) or run with a Python that has it")

MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


def num(x):
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else float("nan")


def save(fig, path):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".sweep", suffix=".png")
    os.close(fd)
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.chmod(tmp, 0o644)  # mkstemp makes it 0600
    os.replace(tmp, path)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("summary")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    try:
        with open(a.summary) as f:
            s = json.load(f)
        groups = s["groups"]
    except (OSError, ValueError, KeyError) as e:
        fail(f"{a.summary}: not a sweep summary.json ({e})")
    if not groups:
        fail(f"{a.summary}: no groups")
    os.makedirs(a.out, exist_ok=True)
    models = []
    for g in groups:
        if g["model"] not in models:
            models.append(g["model"])
    kls = [num(g["mean"].get("kl")) for g in groups]
    finite = [k for k in kls if not math.isnan(k)]
    vmin, vmax = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if vmax <= vmin:
        vmax = vmin + 1e-9
    cmap = plt.get_cmap("viridis")
    cvar_key = s.get("cvar_key") or ""

    panels = [("tail", "mean tail reward", "pareto_reward_tail")]
    if cvar_key:
        panels.append((f"cvar_{cvar_key}", f"mean CVaR_{cvar_key} of the reward", "pareto_reward_cvar"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 5.0), squeeze=False)
    sc = None
    for ax, (ykey, ylabel, flag) in zip(axes[0], panels):
        for mi, model in enumerate(models):
            gs = [g for g in groups if g["model"] == model]
            xs = [num(g["mean"].get("reward")) for g in gs]
            ys = [num(g["mean"].get(ykey)) for g in gs]
            xe = [0.0 if math.isnan(e) else e for e in (num(g["std"].get("reward")) for g in gs)]
            ye = [0.0 if math.isnan(e) else e for e in (num(g["std"].get(ykey)) for g in gs)]
            cs = [num(g["mean"].get("kl")) for g in gs]
            if all(math.isnan(x) or math.isnan(y) for x, y in zip(xs, ys)):
                continue
            ax.errorbar(xs, ys, xerr=xe, yerr=ye, fmt="none", ecolor="0.7", lw=0.8, zorder=1)
            marker = MARKERS[mi % len(MARKERS)]
            if all(math.isnan(c) for c in cs):  # no KL for this model (a baseline): grey
                ax.scatter(xs, ys, color="0.55", marker=marker, s=60, edgecolors="none", label=model, zorder=2)
            else:
                sc = ax.scatter(xs, ys, c=cs, cmap=cmap, vmin=vmin, vmax=vmax, marker=marker, s=60,
                                edgecolors="none", label=model, zorder=2)
            for g, x, y in zip(gs, xs, ys):
                if g.get(flag):
                    ax.scatter([x], [y], s=220, facecolors="none", edgecolors="black", lw=1.4, zorder=3)
                    ax.annotate(f"{g['point']} {model}", (x, y), textcoords="offset points", xytext=(6, 6), fontsize=7)
        ax.set_xlabel("mean reward (test prompts)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.set_title(f"ringed: not dominated in (reward, {ykey})", fontsize=9)
    axes[0][0].legend(fontsize=8, loc="best")
    if sc is not None:
        fig.colorbar(sc, ax=list(axes[0]), label=f"KL (mean of the last {s.get('kl_last', '?')} iterations)")
    save(fig, os.path.join(a.out, "pareto.png"))

    fig, axes = plt.subplots(1, 2, figsize=(12.8, 4.8), squeeze=False)
    for ax, (ykey, ylabel, flag) in zip(axes[0], [("reward", "mean reward", "frontier_reward_kl"),
                                                  ("tail", "mean tail reward", "frontier_tail_kl")]):
        for mi, model in enumerate(models):
            gs = [g for g in groups if g["model"] == model]
            pts = [(num(g["mean"].get("kl")), num(g["mean"].get(ykey)), g.get(flag)) for g in gs]
            if all(math.isnan(p[0]) or math.isnan(p[1]) for p in pts):
                continue
            line = ax.scatter([p[0] for p in pts], [p[1] for p in pts], marker=MARKERS[mi % len(MARKERS)], s=40,
                              label=model, alpha=0.8)
            front = sorted((p[0], p[1]) for p in pts if p[2] and not math.isnan(p[0]) and not math.isnan(p[1]))
            if len(front) > 1:
                ax.plot([p[0] for p in front], [p[1] for p in front], color=line.get_facecolor()[0], lw=1.2)
        ax.set_xlabel(f"KL (mean of the last {s.get('kl_last', '?')} iterations)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.set_title(f"{ylabel} vs KL; lines: each model's frontier", fontsize=9)
    axes[0][0].legend(fontsize=8, loc="best")
    save(fig, os.path.join(a.out, "frontier.png"))


if __name__ == "__main__":
    main()
