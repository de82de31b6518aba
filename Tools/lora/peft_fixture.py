#!/usr/bin/env python3
"""A small PEFT LoRA adapter for the bundled model, for Shears' adapter-folder tests.

Writes OUT/peft-adapter/ exactly as PEFT's save_pretrained writes it (adapter_config.json,
adapter_model.safetensors; the generated README.md model card is dropped) for
Fixtures/models/austen-llama: rank 2, alpha 5, dropout 0.05, all seven projections, A and B drawn
from a seeded normal distribution (B non-zero, unlike PEFT's initialisation, so that B·A is not 0).

Also OUT/peft-adapter-golden.json: PEFT's own merge (merge_and_unload) of two sites, as the delta
W_merged − W of the first rows (float32, as PEFT merges), and logits of the adapted model on a few
tokens, for the Swift reader's checks and Tools/check-peft-adapter.

Usage: peft_fixture.py REPO OUT
"""
import json
import os
import sys

import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaForCausalLM

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
TOKENS = [[284, 1001, 17, 412, 9, 733, 25, 88, 3001, 5, 61, 400]]


def main():
    repo, out = sys.argv[1], sys.argv[2]
    os.chdir(repo)  # base_model_name_or_path is recorded as given: keep it relative
    torch.manual_seed(0)
    base_path = "Fixtures/models/austen-llama"
    model = LlamaForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    config = LoraConfig(r=2, lora_alpha=5, lora_dropout=0.05, target_modules=TARGETS, bias="none", task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, config)
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_A" in name or "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    folder = os.path.join(out, "peft-adapter")
    peft_model.save_pretrained(folder)
    readme = os.path.join(folder, "README.md")
    if os.path.exists(readme):
        os.remove(readme)

    peft_model.eval()
    with torch.no_grad():
        logits = peft_model(torch.tensor(TOKENS)).logits[0]
    sites = [(1, "self_attn.q_proj"), (3, "mlp.down_proj")]
    before = {s: peft_model.get_submodule(f"base_model.model.model.layers.{s[0]}.{s[1]}").base_layer.weight.detach().clone()
              for s in sites}
    merged = peft_model.merge_and_unload()
    golden = {"tokens": TOKENS[0], "scaling": 5 / 2, "sites": [], "logits_head": logits[:, :16].tolist(),
              "logits_sum": float(logits.double().sum()), "logits_abs_sum": float(logits.double().abs().sum())}
    for s in sites:
        w = merged.get_submodule(f"model.layers.{s[0]}.{s[1]}").weight.detach()
        delta = (w - before[s])[:2]
        golden["sites"].append({"layer": s[0], "module": s[1].split(".")[-1], "delta_first_rows": delta.tolist()})
    with open(os.path.join(out, "peft-adapter-golden.json"), "w") as f:
        json.dump(golden, f)
        f.write("\n")


if __name__ == "__main__":
    main()
