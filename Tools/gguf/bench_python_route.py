"""The Python route for the two benchmark conversions, timed the same way as shears (output synced).

  gguf2hf GGUF OUT_DIR        gguf.GGUFReader + gguf.quants.dequantize + Q/K un-permute + safetensors save_file (F32)
  bf16tof16 IN OUT            safetensors.torch load_file + .to(float16) + save_file
  make-bf16 OUT GB            writes a synthetic bf16 checkpoint of about GB gigabytes (not timed)
Prints "seconds=<wall time>"."""
import os
import sys
import time

import numpy as np


def fsync(path):
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


cmd = sys.argv[1]
if cmd == "make-bf16":
    import torch
    from safetensors.torch import save_file
    out, gb = sys.argv[2], float(sys.argv[3])
    g = torch.Generator().manual_seed(0)
    tensors, total, i = {}, 0, 0
    while total < gb * 1e9:
        rows = 4096 if i % 3 else 8192
        t = (torch.randn(rows, 4096, generator=g) * 0.02).to(torch.bfloat16)
        tensors[f"model.layers.{i}.weight"] = t
        tensors[f"model.layers.{i}.norm"] = torch.ones(4096, dtype=torch.bfloat16)
        total += t.numel() * 2 + 8192
        i += 1
    save_file(tensors, out, metadata={"format": "pt"})
    print(f"wrote {out}: {os.path.getsize(out)} bytes, {len(tensors)} tensors")
    sys.exit(0)

start = time.perf_counter()
if cmd == "gguf2hf":
    import gguf
    from safetensors.numpy import save_file
    src, out = sys.argv[2:4]
    r = gguf.GGUFReader(src)
    nh = int(r.fields["llama.attention.head_count"].contents())
    nkv = int(r.fields["llama.attention.head_count_kv"].contents())
    tensors = {}
    for t in r.tensors:
        shape = [int(x) for x in reversed(t.shape.tolist())]
        w = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
        if t.name.endswith(("attn_q.weight", "attn_k.weight")):
            h = nh if "attn_q" in t.name else nkv
            w = w.reshape(h, shape[0] // h // 2, 2, *shape[1:]).swapaxes(1, 2).reshape(shape)
        tensors[t.name] = np.ascontiguousarray(w)  # names are not mapped: renaming costs nothing
    os.makedirs(out, exist_ok=True)
    save_file(tensors, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    fsync(os.path.join(out, "model.safetensors"))
elif cmd == "bf16tof16":
    import torch
    from safetensors.torch import load_file, save_file
    src, out = sys.argv[2:4]
    tensors = {k: v.to(torch.float16) for k, v in load_file(src).items()}
    save_file(tensors, out, metadata={"format": "pt"})
    fsync(out)
print(f"seconds={time.perf_counter() - start:.3f}")
