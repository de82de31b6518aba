"""Writes a synthetic LLaMA checkpoint with random bf16 weights, streamed tensor by tensor (in
chunks of at most 32M values) into one safetensors file, so that memory stays at one chunk
whatever the model's size. The header is written first (every shape is known), then each
tensor's bytes in header order; the file is staged as model.safetensors.partial and renamed.

    python make_synthetic_stream.py SHAPE OUT_DIR [--seed N]

SHAPE:
  1b          hidden 2048, 16 layers, 32/8 heads of 64, MLP 8192, vocab 32000, tied (the shape of
              Tools/engine/make_synthetic.py, which Tools/bench-engine --synthetic uses)
  llama32-1b  Llama-3.2-1B: hidden 2048, 16 layers, 32/8 heads of 64, MLP 8192, vocab 128256, tied
  8b          Llama-3-8B: hidden 4096, 32 layers, 32/8 heads of 128, MLP 14336, vocab 128256, untied
Weights are N(0, 0.02²) rounded to bf16, norms are ones.
"""
import json, os, struct, sys
import torch

SHAPES = {
    "1b": dict(h=2048, layers=16, heads=32, kv=8, d=64, inter=8192, vocab=32000, tied=True, theta=500000.0),
    "llama32-1b": dict(h=2048, layers=16, heads=32, kv=8, d=64, inter=8192, vocab=128256, tied=True, theta=500000.0),
    "8b": dict(h=4096, layers=32, heads=32, kv=8, d=128, inter=14336, vocab=128256, tied=False, theta=500000.0),
}
CHUNK = 32 << 20


def tensors(s):
    h, d = s["h"], s["d"]
    yield "model.embed_tokens.weight", (s["vocab"], h), "randn"
    for i in range(s["layers"]):
        p = f"model.layers.{i}."
        yield p + "input_layernorm.weight", (h,), "ones"
        yield p + "post_attention_layernorm.weight", (h,), "ones"
        yield p + "self_attn.q_proj.weight", (s["heads"] * d, h), "randn"
        yield p + "self_attn.k_proj.weight", (s["kv"] * d, h), "randn"
        yield p + "self_attn.v_proj.weight", (s["kv"] * d, h), "randn"
        yield p + "self_attn.o_proj.weight", (h, s["heads"] * d), "randn"
        yield p + "mlp.gate_proj.weight", (s["inter"], h), "randn"
        yield p + "mlp.up_proj.weight", (s["inter"], h), "randn"
        yield p + "mlp.down_proj.weight", (h, s["inter"]), "randn"
    yield "model.norm.weight", (h,), "ones"
    if not s["tied"]:
        yield "lm_head.weight", (s["vocab"], h), "randn"


def main():
    args = sys.argv[1:]
    seed = 0
    if "--seed" in args:
        i = args.index("--seed"); seed = int(args[i + 1]); del args[i:i + 2]
    if len(args) != 2 or args[0] not in SHAPES:
        sys.exit(__doc__)
    shape, out = args
    s = SHAPES[shape]
    os.makedirs(out, exist_ok=True)
    specs = list(tensors(s))
    header, offset = {"__metadata__": {"format": "pt", "generator": f"Tools/make-synthetic {shape} seed {seed}"}}, 0
    for name, dims, _ in specs:
        n = 1
        for x in dims: n *= x
        header[name] = {"dtype": "BF16", "shape": list(dims), "data_offsets": [offset, offset + 2 * n]}
        offset += 2 * n
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    g = torch.Generator().manual_seed(seed)
    path = os.path.join(out, "model.safetensors")
    total = 0
    with open(path + ".partial", "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for k, (name, dims, init) in enumerate(specs):
            n = 1
            for x in dims: n *= x
            left = n
            while left:
                c = min(CHUNK, left)
                t = torch.ones(c) if init == "ones" else torch.randn(c, generator=g) * 0.02
                f.write(t.to(torch.bfloat16).view(torch.int16).numpy().tobytes())
                left -= c
            total += n
            if k % 9 == 0:
                print(f"make-synthetic: {name} ({total / 1e9:.2f}B parameters written)", file=sys.stderr, flush=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(path + ".partial", path)
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": s["h"],
              "num_hidden_layers": s["layers"], "num_attention_heads": s["heads"], "num_key_value_heads": s["kv"],
              "head_dim": s["d"], "intermediate_size": s["inter"], "vocab_size": s["vocab"], "rms_norm_eps": 1e-5,
              "rope_theta": s["theta"], "tie_word_embeddings": s["tied"], "max_position_embeddings": 8192,
              "hidden_act": "silu", "torch_dtype": "bfloat16"}
    with open(os.path.join(out, "config.json.partial"), "w") as f:
        json.dump(config, f, indent=2)
    os.replace(os.path.join(out, "config.json.partial"), os.path.join(out, "config.json"))
    print(f"{total} parameters", file=sys.stderr)


if __name__ == "__main__":
    main()
