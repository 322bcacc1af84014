#!/usr/bin/python3
"""Plots for `rarlhf eval` runs, like Figure 1 of the RA-RLHF paper.

Reads one or more eval run folders, each holding
  generations.jsonl  one row per prompt: {"prompt", "response", "prompt_score", "reward"}
  eval.json          {"name": ...} (the legend label; the folder name when absent)
and writes into --out:
  reward_hist.png      (a) per model: histogram of prompt scores vs completion rewards
  quantile_plot.png    (b) mean completion reward over the worst q% of prompts by prompt
                           score, q = 1..100%, all models overlaid
  quantile_curve.csv   the numbers behind (b): q_percent,<model>,...

Quantile convention (same as rarlhf's eval/metrics.h quantile_curve): prompts sorted by prompt
score ascending, ties by row order; point q uses the ceil(q% * n) worst prompts.

Needs Debian's /usr/bin/python3 with python3-matplotlib (Agg backend, no display).
Usage: plot_eval.py RUN_DIR [RUN_DIR ...] --out DIR [--tail-threshold X] [--title TEXT]
"""
import argparse
import json
import math
import os
import sys
import tempfile


def fail(msg):
    print(f"plot_eval: error: {msg}", file=sys.stderr)
    sys.exit(1)


try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    fail("matplotlib is not installed; install python3-matplotlib (apt) or run with a Python that has it")


def load_run(folder):
    """Returns (name, prompt_scores, rewards) of one eval run folder."""
    gen_path = os.path.join(folder, "generations.jsonl")
    if not os.path.isfile(gen_path):
        fail(f"{gen_path}: not found; pass folders written by `rarlhf eval`")
    name = os.path.basename(os.path.normpath(folder))
    eval_path = os.path.join(folder, "eval.json")
    if os.path.isfile(eval_path):
        try:
            with open(eval_path, encoding="utf-8") as f:
                meta = json.load(f)
        except (OSError, ValueError) as e:
            fail(f"{eval_path}: not valid JSON ({e})")
        if isinstance(meta, dict) and isinstance(meta.get("name"), str) and meta["name"]:
            name = meta["name"]
    scores, rewards = [], []
    with open(gen_path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{gen_path}:{line_no}"
            try:
                row = json.loads(line)
            except ValueError:
                fail(f"{where}: not valid JSON")
            if not isinstance(row, dict):
                fail(f"{where}: not a JSON object")
            values = []
            for key in ("prompt_score", "reward"):
                v = row.get(key)
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    fail(f"{where}: '{key}' is missing or not a finite number")
                values.append(float(v))
            scores.append(values[0])
            rewards.append(values[1])
    if not scores:
        fail(f"{gen_path}: no rows")
    return name, scores, rewards


def worst_count(n, q):
    """ceil(q*n), at least 1; q*n within 1e-9 of an integer counts as that integer."""
    m = q * n
    r = round(m)
    c = r if abs(m - r) < 1e-9 else math.ceil(m)
    return min(n, max(1, int(c)))


def quantile_curve(scores, rewards, points=100):
    order = sorted(range(len(scores)), key=lambda i: scores[i])  # stable: ties by row order
    prefix = [0.0]
    for i in order:
        prefix.append(prefix[-1] + rewards[i])
    curve = []
    for p in range(1, points + 1):
        k = worst_count(len(order), p / points)
        curve.append(prefix[k] / k)
    return curve


def save_atomic(fig, path):
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".plot_", suffix=".png", dir=folder)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=150, bbox_inches="tight", format="png")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    plt.close(fig)


def write_text_atomic(path, text):
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".plot_", suffix=".tmp", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def plot_histograms(runs, out, tail_threshold, title):
    n = len(runs)
    cols = n if n <= 4 else 3  # one row, as in the paper's Figure 1, up to four models
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.6 * rows), squeeze=False, sharey=True)
    lo = min(min(min(s), min(r)) for _, s, r in runs)
    hi = max(max(max(s), max(r)) for _, s, r in runs)
    pad = 0.02 * (hi - lo or 1.0)
    bins = [lo - pad + i * (hi - lo + 2 * pad) / 40 for i in range(41)]
    for idx, (name, scores, rewards) in enumerate(runs):
        ax = axes[idx // cols][idx % cols]
        ax.hist(scores, bins=bins, alpha=0.55, color="tab:gray", label="prompt score")
        ax.hist(rewards, bins=bins, alpha=0.55, color="tab:blue", label="completion reward")
        mean_s = sum(scores) / len(scores)
        mean_r = sum(rewards) / len(rewards)
        ax.axvline(mean_s, color="dimgray", linestyle=":", linewidth=1.2)
        ax.axvline(mean_r, color="tab:blue", linestyle=":", linewidth=1.2)
        if tail_threshold is not None:
            ax.axvline(tail_threshold, color="tab:red", linestyle="--", linewidth=1.0, label="tail threshold")
        ax.set_title(f"{name}\nmean prompt {mean_s:+.2f}, mean reward {mean_r:+.2f}", fontsize=10)
        ax.set_xlabel("score / reward")
        if idx % cols == 0:
            ax.set_ylabel("prompts")
        ax.grid(alpha=0.25)
        if idx == 0:
            ax.legend(fontsize=8, loc="upper left")
    for idx in range(n, rows * cols):
        axes[idx // cols][idx % cols].axis("off")
    fig.suptitle(f"{title}: prompt scores vs completion rewards" if title else "Prompt scores vs completion rewards",
                 fontsize=12)
    fig.tight_layout()
    save_atomic(fig, os.path.join(out, "reward_hist.png"))


def plot_quantiles(runs, curves, out, title):
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    qs = list(range(1, 101))
    for (name, _, _), curve in zip(runs, curves):
        ax.plot(qs, curve, linewidth=1.8, label=name)
    ax.set_xlabel("worst q% of prompts (by prompt score)")
    ax.set_ylabel("mean completion reward")
    ax.set_xlim(1, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    ax.set_title(f"{title}: quantile plot" if title else "Quantile plot: reward on the hardest prompts", fontsize=12)
    fig.tight_layout()
    save_atomic(fig, os.path.join(out, "quantile_plot.png"))


def main():
    ap = argparse.ArgumentParser(description="Plots for rarlhf eval runs (RA-RLHF Figure 1 style).")
    ap.add_argument("runs", nargs="+", help="eval run folders (generations.jsonl + eval.json)")
    ap.add_argument("--out", required=True, help="folder for the PNGs and quantile_curve.csv")
    ap.add_argument("--tail-threshold", type=float, default=None, help="draw the tail threshold (IMDB -2.5)")
    ap.add_argument("--title", default=None, help="title prefix")
    args = ap.parse_args()

    runs = [load_run(r) for r in args.runs]
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        fail(f"{args.out}: cannot create ({e.strerror})")
    curves = [quantile_curve(s, r) for _, s, r in runs]

    header = "q_percent," + ",".join('"' + n.replace('"', '""') + '"' for n, _, _ in runs)
    lines = [header] + [f"{q}," + ",".join(repr(c[q - 1]) for c in curves) for q in range(1, 101)]
    write_text_atomic(os.path.join(args.out, "quantile_curve.csv"), "\n".join(lines) + "\n")
    plot_histograms(runs, args.out, args.tail_threshold, args.title)
    plot_quantiles(runs, curves, args.out, args.title)
    print(f"plot_eval: wrote reward_hist.png, quantile_plot.png, quantile_curve.csv to {args.out}")


if __name__ == "__main__":
    main()
