"""Reads `shears eval --text ... --tasks all --json` on stdin; prints the perplexity and, with
--tasks, the seven zero-shot cells (acc_norm where lm-eval reports it, else acc, in percent) and
their average, joined by " | ", for the Markdown tables of Tools/prune-table and Tools/recovery-table."""
import json, sys
o = json.load(sys.stdin)
cells = ["%.2f" % o["perplexity"]]
if "--tasks" in sys.argv:
    z = o["zero_shot"]; t = {x["task"]: x for x in z["tasks"]}
    cols = ["boolq", "piqa", "hellaswag", "winogrande", "arc_easy", "arc_challenge", "openbookqa"]
    cells += ["%.2f" % (100 * t[c].get("acc_norm", t[c]["acc"])) for c in cols]
    cells.append("%.2f" % (100 * z["average_acc_norm_or_acc"]))
print(" | ".join(cells))
