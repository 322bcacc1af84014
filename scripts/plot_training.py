#!/usr/bin/python3
"""Training curves of rarlhf runs (`rarlhf plot`, and the end of `rarlhf train` / `rarlhf sft`): the
panels of the RA-RLHF paper's Fig. 3/7 from each run's metrics.jsonl.

Reads run folders (each with metrics.jsonl; x = "iteration" for train, "step" for sft) and draws one
panel per metric present: score, KL, beta, kept episodes k(m), return threshold, clip fraction,
policy and value losses (train); train/eval loss, learning rate, gradient norm (sft). Runs that differ
only by a seed folder (seed<N>), a trailing -s<N> in their name or the task of a Slurm array
(<array job>_<task>, as scripts/slurm writes them) form one group: its mean line and a
mean +- std band over the seeds; other runs are overlaid.

Needs Debian's /usr/bin/python3 with python3-matplotlib (Agg backend, no display).
Usage: plot_training.py RUN_DIR [RUN_DIR ...] --out FILE.png [--title TEXT] [--csv FILE.csv]
"""
import argparse
import csv
import json
import math
import os
import re
import sys
import tempfile


def fail(msg):
    print(f"plot_training: error: {msg}", file=sys.stderr)
    sys.exit(1)


try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    fail("matplotlib is not installed; install python3-matplotlib (apt) or run with a Python that has it")

PANELS = [  # (metrics.jsonl key, panel title)
    ("objective/scores", "reward (score)"),
    ("objective/kl", "KL(pi || pi_ref) per episode"),
    ("kl/beta", "KL coefficient beta"),
    ("risk/keep_count", "kept episodes k(m)"),
    ("risk/return_threshold", "return threshold"),
    ("policy/clipfrac_avg", "policy clip fraction"),
    ("loss/policy_avg", "policy loss"),
    ("loss/value_avg", "value loss"),
    ("loss/train", "train loss (nats/token)"),
    ("loss/eval", "held-out loss (nats/token)"),
    ("lr", "learning rate"),
    ("grad_norm", "gradient norm (before clipping)"),
]


def read_run(path):
    file = os.path.join(path, "metrics.jsonl")
    if not os.path.isfile(file):
        fail(f"{path}: no metrics.jsonl (is it a train or sft run folder?)")
    rows = []
    with open(file) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                print(f"plot_training: {file}:{n}: not JSON; skipped (a torn last line?)", file=sys.stderr)
    if not rows:
        fail(f"{file}: no records")
    return rows


def group_label(path):
    parts = [p for p in os.path.normpath(os.path.abspath(path)).split(os.sep) if p]
    # A Slurm array task's folder (scripts/slurm: runs/<name>/<array job>_<task>): the tasks of one
    # array are the seeds of one group.
    task = re.fullmatch(r"(\d+)_\d+", parts[-1]) if parts else None
    if task and len(parts) > 1:
        return parts[-2] + "/" + task.group(1)
    kept = [p for p in parts if not re.fullmatch(r"seed\d+", p)]
    label = "/".join(kept[-2:]) if len(kept) != len(parts) else kept[-1]
    return re.sub(r"-s\d+$", "", label)


def series(rows, key):
    xkey = "iteration" if any("iteration" in r for r in rows) else "step"
    pts = {}
    for r in rows:
        v = r.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and xkey in r:
            pts[r[xkey]] = float(v)
    return xkey, pts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--title", default="")
    ap.add_argument("--csv", default="")
    a = ap.parse_args()

    groups = {}
    for path in a.runs:
        groups.setdefault(group_label(path), []).append(read_run(path))
    panels = [(k, t) for k, t in PANELS if any(k in r for runs in groups.values() for rows in runs for r in rows)]
    if not panels:
        fail("none of the plotted metrics is in these runs")
    cols = 2 if len(panels) > 1 else 1
    nrows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(6.2 * cols, 3.0 * nrows), squeeze=False)
    csv_rows = []
    xlabel = "step"
    for ax, (key, title) in zip(axes.flat, panels):
        for label, runs in groups.items():
            per_run = []
            for rows in runs:
                xlabel, pts = series(rows, key)
                if pts:
                    per_run.append(pts)
            if not per_run:
                continue
            xs = sorted(set().union(*[set(p) for p in per_run]))
            mean, lo, hi = [], [], []
            for x in xs:
                vals = [p[x] for p in per_run if x in p]
                m = sum(vals) / len(vals)
                sd = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
                mean.append(m)
                lo.append(m - sd)
                hi.append(m + sd)
                csv_rows.append((key, label, x, m, sd, len(vals)))
            name = label + (f" ({len(per_run)} seeds)" if len(per_run) > 1 else "")
            line, = ax.plot(xs, mean, lw=1.4, label=name)
            if len(per_run) > 1:
                ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper center", ncol=min(4, len(handles)), fontsize=9, frameon=False)
    if a.title:
        fig.suptitle(a.title, y=1.02)
    fig.tight_layout(rect=(0, 0, 1, 0.95 if handles else 1))
    out_dir = os.path.dirname(os.path.abspath(a.out))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".curves", suffix=".png")
    os.close(fd)
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.chmod(tmp, 0o644)  # mkstemp makes it 0600
    os.replace(tmp, a.out)
    if a.csv:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(a.csv)), prefix=".curves", suffix=".csv")
        with os.fdopen(fd, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")  # quotes a run label with a comma or a quote
            w.writerow(["metric", "run", "x", "mean", "std", "seeds"])
            w.writerows(csv_rows)
        os.chmod(tmp, 0o644)
        os.replace(tmp, a.csv)


if __name__ == "__main__":
    main()
