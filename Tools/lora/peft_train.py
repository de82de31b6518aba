#!/usr/bin/env python3
"""PyTorch + PEFT side of Tools/bench-finetune: LoRA training steps on the CPU, timed.

    peft_train.py MODEL [--seq-len 256] [--micro-batch-size 4] [--batch-size 4] [--threads N]
                  [--steps 20 | --seconds S] [--rank 8] [--alpha 16] [--dropout 0.05]
                  [--targets q_proj,...] [--lr 1e-4] [--text FILE] [--seed 0]

The setting of upstream LLM-Pruner's post_training.py on the CPU: the model in float32 (fp16 is
a GPU setting), LoRA on the seven projections (r 8, alpha 16, dropout 0.05 by default), AdamW
(torch's, weight decay 0), gradient accumulation of batch / micro-batch micro-steps per optimizer
step, causal-LM cross-entropy (transformers' loss) on windows of --seq-len tokens drawn from the
text (seeded). No gradient checkpointing (PEFT's default; upstream does not enable it).

Timing: each optimizer step is timed from the first micro-batch's forward to optimizer.step();
the first step (allocation, thread start-up) is reported but left out of the rate. Prints one JSON
line: tokens per second of training steps (median step and overall), peak RSS of the process
(getrusage ru_maxrss: the high-water mark, model and optimizer state included) and the RSS after
importing torch, transformers and peft (before the model), the losses, versions and threads.
"""
import argparse
import json
import os
import random
import resource
import statistics
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--micro-batch-size", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=None, help="stop after this much training time (overrides --steps)")
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16)
    ap.add_argument("--dropout", type=float, default=0.05)
    ap.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--text", default=None, help="training text (default: the bundled Austen novels)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.batch_size % a.micro_batch_size:
        sys.exit("--batch-size must be a multiple of --micro-batch-size")

    import torch
    torch.set_num_threads(a.threads)
    import peft
    import transformers
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    # The libraries alone (before the model): part of the peak, reported apart.
    import_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    t_load = time.time()
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32, trust_remote_code=True)
    model.config.use_cache = False
    tok = AutoTokenizer.from_pretrained(a.model)
    config = LoraConfig(r=a.rank, lora_alpha=a.alpha, lora_dropout=a.dropout, target_modules=a.targets.split(","),
                        bias="none", task_type="CAUSAL_LM")
    model = get_peft_model(model, config)
    model.train()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    files = [a.text] if a.text else sorted(
        os.path.join(root, "Fixtures/text/austen-calibration", f)
        for f in os.listdir(os.path.join(root, "Fixtures/text/austen-calibration")) if f.endswith(".txt"))
    docs = []
    for f in files:
        with open(f, encoding="utf-8", errors="replace") as h:
            docs.append(tok(h.read())["input_ids"])
    docs = [d for d in docs if len(d) >= a.seq_len]
    if not docs:
        sys.exit(f"no document holds {a.seq_len} tokens")

    def window():
        d = docs[rng.randrange(len(docs))]
        s = rng.randrange(len(d) - a.seq_len + 1)
        return d[s:s + a.seq_len]

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=a.lr, weight_decay=0.0)
    accumulation = a.batch_size // a.micro_batch_size
    load_s = time.time() - t_load
    step_times, losses = [], []
    trained = 0.0
    step = 0
    while True:
        if a.seconds is None and step >= a.steps:
            break
        if a.seconds is not None and trained >= a.seconds and step >= 2:
            break
        batches = [torch.tensor([window() for _ in range(a.micro_batch_size)]) for _ in range(accumulation)]
        t0 = time.time()
        total = 0.0
        for ids in batches:
            loss = model(input_ids=ids, labels=ids).loss / accumulation
            loss.backward()
            total += float(loss)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        dt = time.time() - t0
        step_times.append(dt)
        losses.append(total)
        trained += dt
        step += 1
        print(f"peft_train: step {step} loss {total:.4f} {a.batch_size * a.seq_len / dt:.0f} tokens/s", file=sys.stderr)

    tokens_per_step = a.batch_size * a.seq_len
    timed = step_times[1:] if len(step_times) > 1 else step_times
    print("PEFT " + json.dumps({
        "model": a.model, "threads": a.threads, "seq_len": a.seq_len, "micro_batch_size": a.micro_batch_size,
        "batch_size": a.batch_size, "rank": a.rank, "alpha": a.alpha, "dropout": a.dropout, "targets": a.targets,
        "steps": step, "first_step_s": step_times[0],
        "tokens_per_s": tokens_per_step * len(timed) / sum(timed),
        "median_step_tokens_per_s": tokens_per_step / statistics.median(timed),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "import_rss_mib": import_rss_mib,
        "load_s": load_s, "trainable_parameters": trainable, "losses": losses,
        "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
    }))


if __name__ == "__main__":
    main()
