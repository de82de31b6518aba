"""PyTorch + PEFT reference for Shears' LoRA training (Tests/EngineTests/LoRAGoldenTests.swift).

    python reference.py MODEL_DIR OUT.safetensors [--seq-len T] [--rank R] [--merge-shape B T]

The committed goldens: the two tiny cases with the defaults; austen-llama with --rank 2 --merge-shape 1 4.

MODEL_DIR holds config.json and model.safetensors (a Fixtures/engine case or Fixtures/models/austen-llama).
The model runs in float64 (RMSNorm and the loss in float64 too, as Tools/engine/make_goldens.py does),
wrapped by PEFT's LoraConfig on the seven projections, no dropout. The initial A and B are seeded
random values (B non-zero, so that dA is not zero at step 1) and are written to OUT as
`init.<layer>.<module>.A/B`. Ten optimiser steps follow, each over two micro-batches of right-padded
sequences of unequal length with prompt tokens masked (labels -100), as transformers' Trainer runs
them: loss = Σ NLL of the batch's counted tokens / their number (num_items_in_batch), summed over the
micro-batches' backward passes; clip_grad_norm_(max 1.0); torch.optim.AdamW (lr 1e-3, betas 0.9/0.999,
eps 1e-8, weight decay 0.01); get_linear_schedule_with_warmup(0 warm-up steps, 10 total).

OUT also holds every step's batch (`step<k>.mb<j>.tokens`, `.trained`, `.lengths`), losses, gradient
norms and learning rates, A and B after step 1 and step 10 (`step1.*`, `step10.*`), the schedule of a
warm-up case (`schedule.lrs`: warm-up 3, 10 steps, base 1e-3, from torch's LambdaLR), and the logits
of PEFT's merge_and_unload() after step 10 on `merge.tokens` with the merged weights rounded to the
checkpoint's stored dtype (`merge.logits`).
"""
import argparse, json, os, sys
import torch
from safetensors import safe_open
from safetensors.torch import save_file

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "engine"))
from make_goldens import _patch_norms  # noqa: E402

MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--seq-len", type=int, default=12)
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--alpha", type=float, default=8.0)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--merge-shape", type=int, nargs=2, default=[2, 12], help="sequences and tokens of the merge check")
    args = ap.parse_args()
    torch.set_num_threads(2)
    _patch_norms()
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.optimization import get_linear_schedule_with_warmup
    from peft import LoraConfig, get_peft_model

    cfg = AutoConfig.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=torch.float64, attn_implementation="eager")
    with safe_open(os.path.join(args.model, "model.safetensors"), "pt") as f:
        stored = {k: f.get_slice(k).get_dtype() for k in f.keys()}
    stored_dtype = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}[next(iter(stored.values()))]
    lora = LoraConfig(r=args.rank, lora_alpha=args.alpha, lora_dropout=0.0, target_modules=MODULES, bias="none")
    model = get_peft_model(model, lora).double()
    model.train()

    gen = torch.Generator().manual_seed(1234)
    out = {}
    adapters = []
    for name, mod in model.named_modules():
        if hasattr(mod, "lora_A") and "default" in mod.lora_A:
            layer = int(name.split(".layers.")[1].split(".")[0])
            module = name.split(".")[-1]
            a, b = mod.lora_A["default"].weight, mod.lora_B["default"].weight
            with torch.no_grad():
                a.copy_((torch.rand(a.shape, generator=gen, dtype=torch.float64) * 2 - 1) / a.shape[1] ** 0.5)
                b.copy_((torch.rand(b.shape, generator=gen, dtype=torch.float64) * 2 - 1) * 0.05)
            out[f"init.{layer}.{module}.A"] = a.detach().float().clone()
            out[f"init.{layer}.{module}.B"] = b.detach().float().clone()
            adapters.append((layer, module, a, b))
    # The golden's initial values are the F32 ones Shears reads; run from exactly those.
    with torch.no_grad():
        for layer, module, a, b in adapters:
            a.copy_(out[f"init.{layer}.{module}.A"].double())
            b.copy_(out[f"init.{layer}.{module}.B"].double())

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, foreach=False)
    sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=0, num_training_steps=args.steps)
    V, T = cfg.vocab_size, args.seq_len
    losses, norms, lrs = [], [], []
    for step in range(args.steps):
        mbs = []
        for j in range(2):
            lengths = [T, T - 3] if j == 0 else [T - 1]
            tokens = torch.zeros(len(lengths), T, dtype=torch.int64)
            trained = torch.zeros(len(lengths), T, dtype=torch.int64)
            for r, n in enumerate(lengths):
                tokens[r, :n] = torch.randint(0, V, (n,), generator=gen)
                prompt = int(torch.randint(0, 4, (1,), generator=gen))
                trained[r, prompt:n] = 1
            out[f"step{step}.mb{j}.tokens"] = tokens
            out[f"step{step}.mb{j}.trained"] = trained
            out[f"step{step}.mb{j}.lengths"] = torch.tensor(lengths, dtype=torch.int64)
            mbs.append((tokens, trained, lengths))
        # Counted tokens of the whole batch: shifted labels that are not -100.
        items = sum(int(tr[:, 1:].sum()) for _, tr, _ in mbs)
        opt.zero_grad()
        total = 0.0
        for tokens, trained, lengths in mbs:
            mask = torch.zeros_like(tokens)
            for r, n in enumerate(lengths):
                mask[r, :n] = 1
            labels = torch.where(trained.bool(), tokens, torch.full_like(tokens, -100))
            logits = model(input_ids=tokens, attention_mask=mask).logits
            nll = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1),
                                                    ignore_index=-100, reduction="sum")
            (nll / items).backward()
            total += nll.item() / items
        losses.append(total)
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, 1.0)))
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
        if step in (0, args.steps - 1):
            for layer, module, a, b in adapters:
                out[f"step{step + 1}.{layer}.{module}.A"] = a.detach().float().clone()
                out[f"step{step + 1}.{layer}.{module}.B"] = b.detach().float().clone()
    out["losses"] = torch.tensor(losses, dtype=torch.float64)
    out["gradient_norms"] = torch.tensor(norms, dtype=torch.float64)
    out["lrs"] = torch.tensor(lrs, dtype=torch.float64)

    # A warm-up schedule from torch's LambdaLR.
    dummy = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    s = get_linear_schedule_with_warmup(dummy, num_warmup_steps=3, num_training_steps=10)
    sl = []
    for _ in range(10):
        sl.append(s.get_last_lr()[0])
        dummy.step()
        s.step()
    out["schedule.lrs"] = torch.tensor(sl, dtype=torch.float64)

    # PEFT's merge, with the merged weights stored in the checkpoint's dtype.
    merged = model.merge_and_unload()
    with torch.no_grad():
        for n, p in merged.named_parameters():
            p.copy_(p.to(stored_dtype).double())
    merged.eval()
    mt = torch.randint(0, V, tuple(args.merge_shape), generator=gen)
    with torch.no_grad():
        out["merge.tokens"] = mt
        out["merge.logits"] = merged(input_ids=mt).logits.float()
    out = {k: v.contiguous() for k, v in out.items()}
    save_file(out, args.out, metadata={"rank": str(args.rank), "alpha": str(args.alpha), "steps": str(args.steps)})
    print(f"{args.out}: {len(adapters)} adapters, losses {losses[0]:.6f} → {losses[-1]:.6f}")


if __name__ == "__main__":
    main()
