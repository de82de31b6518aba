#!/usr/bin/env python3
"""Held-out perplexity against training tokens, one line per run (Tools/finetune-plot).

    finetune_plot.py OUT.png LOG.jsonl... [--baseline LABEL=PPL ...] [--title TEXT]

Each LOG is JSON lines, one object per evaluation: {"row": "<run label>", "tokens": <training
tokens so far>, "perplexity": <held-out perplexity>} (extra keys are ignored; a file may hold
several rows). Points of a row are drawn in token order. --baseline draws a dashed horizontal line
(e.g. dense=53.9). Writes a small PNG (6.4 × 4 in, 100 dpi) and prints its path.
"""
import argparse
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("logs", nargs="+")
    ap.add_argument("--baseline", action="append", default=[])
    ap.add_argument("--title", default="Held-out perplexity (Persuasion, 60 × 128) during training")
    a = ap.parse_args()
    rows = {}
    for path in a.logs:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    o = json.loads(line)
                    row, tokens, ppl = str(o["row"]), float(o["tokens"]), float(o["perplexity"])
                except (ValueError, KeyError, TypeError) as e:
                    sys.exit(f"{path}: line {n}: not an object with row, tokens and perplexity ({e})")
                rows.setdefault(row, []).append((tokens, ppl))
    if not rows:
        sys.exit("no evaluations in the logs")
    fig, ax = plt.subplots(figsize=(6.4, 4), dpi=100)
    for row, points in rows.items():
        points.sort()
        ax.plot([t / 1e6 for t, _ in points], [p for _, p in points], marker="o", markersize=3, label=row)
    for b in a.baseline:
        label, _, value = b.partition("=")
        ax.axhline(float(value), linestyle="--", linewidth=1, color="gray")
        ax.annotate(f"{label} {float(value):g}", (0, float(value)), textcoords="offset points", xytext=(4, 3),
                    fontsize=8, color="gray")
    ax.set_xlabel("training tokens (millions)")
    ax.set_ylabel("perplexity")
    ax.set_title(a.title, fontsize=10)
    ax.grid(True, linewidth=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(a.out)
    print(a.out)


if __name__ == "__main__":
    main()
