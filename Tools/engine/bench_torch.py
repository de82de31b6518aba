"""PyTorch's side of Tools/bench-engine: SmolLM2 loss + gradients of every weight on 10 × 128
tokens, float32 on CPU, with the same threads; best of 2; peak RSS of the process."""
import json, os, resource, sys, time
import torch
from safetensors.torch import load_file
from transformers import LlamaForCausalLM

hf, golden, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.set_num_threads(threads)
ids = load_file(golden)["ppl.tokens"].long()
batch = torch.cat([ids[:1024].reshape(8, 128), ids[:256].reshape(2, 128)])
model = LlamaForCausalLM.from_pretrained(hf, dtype=torch.float32, attn_implementation="sdpa")
best = float("inf")
for _ in range(2):
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
