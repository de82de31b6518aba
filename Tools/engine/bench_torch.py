"""PyTorch's side of Tools/bench-engine: a model's loss + gradients of every weight on 10 × 128
tokens, float32 on CPU, with the same threads; best of 2; peak RSS of the process."""
import json, os, resource, sys, time
import torch
from transformers import LlamaForCausalLM

hf, threads = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(threads)
model = LlamaForCausalLM.from_pretrained(hf, dtype=torch.float32, attn_implementation="sdpa")
vocab = model.config.vocab_size
batch = torch.tensor([[(b * 131 + t * 7919 + 17) % vocab for t in range(128)] for b in range(10)])
best = float("inf")
for _ in range(int(os.environ.get("BENCH_REPEAT", "2"))):
    model.zero_grad(set_to_none=True)
    t0 = time.time()
    loss = model(input_ids=batch, labels=batch).loss
    loss.backward()
    best = min(best, time.time() - t0)
with torch.no_grad():
    t0 = time.time()
    model(input_ids=batch, labels=batch)
    fwd = time.time() - t0
print("TORCH " + json.dumps({"threads": threads, "forward_s": fwd, "forward_backward_s": best, "loss": loss.item(),
                             "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                             "torch": torch.__version__}))
