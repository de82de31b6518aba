"""Adds to Fixtures/zero-shot/goldens.json, for every request, the exact log-likelihood of its
continuation: transformers with the austen-llama weights in float64 (activations, log-softmax and
sum in float64; RoPE angles in float32 as transformers computes them in any dtype) on the golden's
own token ids (`truncated_context_ids` + `continuation_ids`). lm-eval's float32 value stays as
`loglikelihood`; this one is `loglikelihood_float64`. Called by make_goldens.py, or alone:

    python Tools/zero-shot/goldens_float64.py ROOT"""
import json, os, sys

import torch
import torch.nn.functional as F
from transformers import LlamaForCausalLM


def add_float64(root):
    path = os.path.join(root, "Fixtures", "zero-shot", "goldens.json")
    model = LlamaForCausalLM.from_pretrained(os.path.join(root, "Fixtures", "models", "austen-llama"),
                                             dtype=torch.float64).eval()
    goldens = json.load(open(path, encoding="utf-8"))
    worst = 0.0
    for task in goldens["tasks"].values():
        for item in task["items"]:
            for r in item["requests"]:
                ids = r["truncated_context_ids"] + r["continuation_ids"]
                n = len(r["continuation_ids"])
                with torch.no_grad():
                    logits = model(torch.tensor([ids[:-1]])).logits[0][-n:]
                lp = F.log_softmax(logits.double(), dim=-1).gather(1, torch.tensor(ids[-n:])[:, None])
                r["loglikelihood_float64"] = float(lp.sum())
                worst = max(worst, abs(r["loglikelihood_float64"] - r["loglikelihood"]))
    with open(path, "w", encoding="utf-8") as f:
        json.dump(goldens, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"{path}: float64 log-likelihoods added; lm-eval's float32 values differ from them by at most {worst:.2e}",
          file=sys.stderr)


if __name__ == "__main__":
    torch.set_num_threads(2)
    add_float64(sys.argv[1])
