#!/usr/bin/env python3
"""Plot the RA-RLHF soft-risk schedule (like the paper's risk-schedule figure).

Reads the JSON written by `rarlhf schedule --format json` (or passed by `rarlhf schedule --plot`)
and draws the kept fraction alpha'(m) = k(m)/B over the iterations: the warm start (m <= n), the
linear drop, and the floor alpha reached at ceil(rho*M); the other rule (legacy/paper) dashed for
comparison, with the kept episode count k on the right axis. The PNG is written atomically.

    /usr/bin/python3 scripts/plot_schedule.py --input schedule.json --output schedule.png
"""
import argparse
import json
import math
import os
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--input", required=True, help="schedule JSON from `rarlhf schedule --format json`")
    ap.add_argument("--output", required=True, help="PNG to write")
    args = ap.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_schedule.py: matplotlib is missing; apt-get install python3-matplotlib", file=sys.stderr)
        return 2
    try:
        with open(args.input, encoding="utf-8") as f:
            s = json.load(f)
        B, M = int(s["batch_size"]), int(s["iterations"])
        ks, other = s["keep_count"], s["other_keep_count"]
        alpha, n, rho = float(s["alpha"]), int(s["n"]), float(s["rho"])
    except (OSError, ValueError, KeyError) as e:
        print(f"plot_schedule.py: {args.input}: not a schedule JSON ({e}); write one with "
              "`rarlhf schedule --format json`", file=sys.stderr)
        return 2

    m = list(range(M))
    fig, ax = plt.subplots(figsize=(7.0, 4.2), dpi=150)
    ax.step(m, [k / B for k in ks], where="post", color="#c0392b", lw=2.0,
            label=f"{s['schedule']} schedule (used)")
    ax.step(m, [k / B for k in other], where="post", color="#7f8c8d", lw=1.2, ls="--",
            label=f"{s['other_schedule']} schedule")
    end = math.ceil(rho * M - 1e-9)
    ax.axvspan(0, min(n, M - 1), color="#3498db", alpha=0.10, label=f"warm start (m ≤ n = {n})")
    if end < M:
        ax.axvline(end, color="#2c3e50", lw=0.8, ls=":")
        ax.text(end, 1.02, f"⌈ρM⌉ = {end}", ha="center", va="bottom", fontsize=8, color="#2c3e50")
    ax.axhline(alpha, color="#27ae60", lw=0.8, ls=":")
    ax.text(0.5, alpha, f"α = {alpha:g}", va="bottom", fontsize=8, color="#27ae60")
    ax.set_xlim(0, max(M - 1, 1))
    ax.set_ylim(0, 1.08)
    ax.set_xlabel("iteration m")
    ax.set_ylabel("kept fraction α′ = k / B")
    ax.set_title(f"Soft-risk schedule: B = {B}, M = {M}, α = {alpha:g}, n = {n}, ρ = {rho:g}")
    right = ax.twinx()
    right.set_ylim(0, 1.08 * B)
    right.set_ylabel("episodes kept k")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    out = os.path.abspath(args.output)
    tmp = f"{out}.tmp.{os.getpid()}.png"
    fig.savefig(tmp)
    os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
