#!/usr/bin/env python3
"""Summarise `rarlhf run` pipelines over seeds: the README's demo table (mean +- sample std) and the
per-seed RA-RLHF - RLHF differences.

  scripts/demo_seeds.py runs/demo-s42 runs/demo-s1 runs/demo-s2

Reads each run's eval/<model>-{test,tail}/eval.json and {rlhf,ra_rlhf}/metrics.jsonl (written by
`rarlhf eval` and `rarlhf train`); standard library only.
"""
import json
import statistics
import sys
from pathlib import Path

# Models in pipeline order; those a pipeline did not evaluate (configs/demo.json has no pretrain stage,
# configs/demo-toy.json's base is a random init and is not evaluated) are left out.
MODELS = [("base", "base (no SFT)"), ("pretrain", "pretrain"), ("sft", "SFT"), ("rlhf", "RLHF"),
          ("ra_rlhf", "**RA-RLHF**")]


def load(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        sys.exit(f"demo_seeds: {path}: {e}")


def row(run, model):
    test = load(Path(run) / "eval" / f"{model}-test" / "eval.json")
    tail = load(Path(run) / "eval" / f"{model}-tail" / "eval.json")
    return {
        "reward": test["reward"]["mean"],
        "tail": tail["reward"]["mean"],
        "cvar": test["cvar"]["0.1"],
        "ppl": (test.get("perplexity") or {}).get("mean_per_text", float("nan")),
        "dist2": test["dist"]["dist2"],
    }


def last_kl(run, stage, n=10):
    path = Path(run) / stage / "metrics.jsonl"
    try:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as e:
        sys.exit(f"demo_seeds: {path}: {e}")
    kls = [r["objective/kl"] for r in rows[-n:]]
    return sum(kls) / len(kls)


def fmt(values, digits):
    if any(v != v for v in values):  # NaN: not measured
        return "–"
    mean = statistics.mean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def main(runs):
    if not runs:
        sys.exit(__doc__.strip())
    models = [(m, label) for m, label in MODELS if all((Path(r) / "eval" / f"{m}-test" / "eval.json").exists() for r in runs)]
    table = {m: [row(r, m) for r in runs] for m, _ in models}
    print("| model | reward (test) | tail reward | CVaR_0.1 (test) | perplexity | Dist-2 |")
    print("|---|---|---|---|---|---|")
    for m, label in models:
        rs = table[m]
        cells = [fmt([r["reward"] for r in rs], 3), fmt([r["tail"] for r in rs], 3), fmt([r["cvar"] for r in rs], 3),
                 fmt([r["ppl"] for r in rs], 0), fmt([r["dist2"] for r in rs], 3)]
        if m == "ra_rlhf":
            cells[:3] = [f"**{c}**" for c in cells[:3]]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print()
    print("| run | tail RA / RLHF | Δ tail | Δ CVaR_0.1 | Δ mean | perplexity RA / RLHF | KL (last 10) RA / RLHF |")
    print("|---|---|---|---|---|---|---|")
    for i, run in enumerate(runs):
        ra, rl = table["ra_rlhf"][i], table["rlhf"][i]
        print(f"| {run} | {ra['tail']:.3f} / {rl['tail']:.3f} | {ra['tail'] - rl['tail']:+.3f} | "
              f"{ra['cvar'] - rl['cvar']:+.3f} | {ra['reward'] - rl['reward']:+.3f} | {ra['ppl']:.0f} / {rl['ppl']:.0f} | "
              f"{last_kl(run, 'ra_rlhf'):.2f} / {last_kl(run, 'rlhf'):.2f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
