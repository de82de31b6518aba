#!/usr/bin/env python3
"""Loads a Shears-written PEFT adapter folder with PEFT and checks it against references.

    check_peft_adapter.py BASE ADAPTER [--reference FOLDER] [--golden GOLDEN.json] [--merged MERGED]
                          [--tolerance 1e-5]

- BASE: the base model folder (transformers; a per-layer-width pruned folder loads with
  trust_remote_code).
- ADAPTER: the adapter folder to check (`PeftModel.from_pretrained(base, ADAPTER)` must load it
  with no missing or unexpected keys).
- Always: the logits agree with the base model whose weights get W += (alpha / r)·B·A applied
  by hand from the folder's tensors (modules found by the keys), independently of PEFT's merge.
- --reference: another adapter folder (e.g. the PEFT-written Fixtures/lora/peft-adapter): the
  logits of both adapted models must agree.
- --golden: Fixtures/lora/peft-adapter-golden.json: logits of PEFT's model on its tokens.
- --merged: a merged checkpoint written by Shears (`finetune` output): each adapted weight must
  equal PEFT's merge_and_unload() rounded to the merged file's dtype (within one unit in the last
  place, measured as eps·|w|), and the merged model's float32 logits must agree with PEFT's merged model.

Prints one JSON line; exits 1 when a difference exceeds tolerance · max(1, max |logit|).
"""
import argparse
import json
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

DEFAULT_TOKENS = [284, 1001, 17, 412, 9, 733, 25, 88, 3001, 5, 61, 400]


def load_base(path):
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, trust_remote_code=True).eval()


def adapted(base_path, adapter):
    model = PeftModel.from_pretrained(load_base(base_path), adapter).eval()
    return model


def logits(model, tokens):
    with torch.no_grad():
        return model(torch.tensor([tokens])).logits[0].double()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("adapter")
    ap.add_argument("--reference")
    ap.add_argument("--golden")
    ap.add_argument("--merged")
    ap.add_argument("--tolerance", type=float, default=1e-5)
    a = ap.parse_args()
    torch.manual_seed(0)
    golden = json.load(open(a.golden)) if a.golden else None
    tokens = golden["tokens"] if golden else DEFAULT_TOKENS
    report, ok = {}, True

    model = adapted(a.base, a.adapter)
    # from_pretrained warns about missing adapter keys instead of failing: check them here.
    state = {k for k, _ in model.named_parameters() if "lora_" in k}
    from safetensors import safe_open
    with safe_open(f"{a.adapter}/adapter_model.safetensors", "pt") as f:
        saved = set(f.keys())
    expected = {k.replace(".default", "") for k in state}
    report["missing_keys"] = sorted(expected - saved)[:5]
    report["unexpected_keys"] = sorted(saved - expected)[:5]
    ok &= not report["missing_keys"] and not report["unexpected_keys"]
    out = logits(model, tokens)
    scale = max(1.0, float(out.abs().max()))

    # Independent of PEFT's merge: the base model with W += (alpha / r)·B·A applied by hand from
    # the folder's tensors, modules found by the keys' names.
    cfg = json.load(open(f"{a.adapter}/adapter_config.json"))
    s = cfg["lora_alpha"] / cfg["r"]
    manual = load_base(a.base)
    with safe_open(f"{a.adapter}/adapter_model.safetensors", "pt") as f, torch.no_grad():
        for key in f.keys():
            if not key.endswith(".lora_A.weight"):
                continue
            module = key[len("base_model.model."):-len(".lora_A.weight")]
            A, B = f.get_tensor(key).double(), f.get_tensor(key.replace("lora_A", "lora_B")).double()
            w = manual.get_submodule(module).weight
            w.copy_((w.double() + s * (B @ A)).float())
    d = float((logits(manual, tokens) - out).abs().max())
    report["manual_merge_max_diff"] = d
    ok &= d <= a.tolerance * scale

    if a.reference:
        ref = logits(adapted(a.base, a.reference), tokens)
        d = float((out - ref).abs().max())
        report["reference_max_diff"] = d
        ok &= d <= a.tolerance * scale
    if golden:
        head = torch.tensor(golden["logits_head"], dtype=torch.float64)
        d = max(float((out[:, :16] - head).abs().max()), abs(float(out.sum()) - golden["logits_sum"]) / out.numel())
        report["golden_max_diff"] = d
        ok &= d <= a.tolerance * scale
    if a.merged:
        peft_merged = model.merge_and_unload()
        theirs = dict(peft_merged.named_parameters())
        ours_model = AutoModelForCausalLM.from_pretrained(a.merged, dtype="auto", trust_remote_code=True).eval()
        worst_ulps = 0.0
        for name, p in ours_model.named_parameters():
            want = theirs[name].detach().to(p.dtype)
            diff = (p.detach().float() - want.float()).abs()
            ulp = torch.finfo(p.dtype).eps * want.float().abs().clamp_min(torch.finfo(p.dtype).tiny)
            worst_ulps = max(worst_ulps, float((diff / ulp).max()))
        report["merged_worst_ulps"] = worst_ulps
        ok &= worst_ulps <= 2.0  # unit eps·|w|: one true ulp measures between 1 and 2
        ours_f32 = load_base(a.merged)
        d = float((logits(ours_f32, tokens) - logits(peft_merged, tokens)).abs().max())
        report["merged_logits_max_diff"] = d
        report["merged_dtype"] = str(next(ours_model.parameters()).dtype)
        if report["merged_dtype"] == "torch.float32":
            ok &= d <= a.tolerance * scale
    report["max_abs_logit"] = scale
    report["ok"] = bool(ok)
    print(json.dumps(report))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
