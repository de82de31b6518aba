"""Golden data for the Swift engine, computed with transformers in float64.

    python make_goldens.py tiny OUT_DIR          tiny random configurations → OUT_DIR/<name>/
    python make_goldens.py tiny OUT_DIR qwen3    only the cases whose name starts with qwen3
    python make_goldens.py real HF_DIR OUT       a trained model folder with tokenizer.json (SmolLM2 converted
                                                 by Tools/smollm2-hf, the bundled austen-llama) → OUT (safetensors)

Tiny: each case folder holds config.json and model.safetensors (the model, stored in the case's
dtype) and golden.safetensors: the token batch, loss, all logits, the gradient of every parameter
and the Fisher sum (Σ over samples of the squared gradient of each sample's own mean loss, by a
per-sample loop), all from the float64 model whose weights are the stored (rounded) values.
Qwen3 cases also hold a greedy continuation (`greedy.prompt`, `greedy.continuation`), and
`qwen3-eval` (vocabulary of Fixtures/models/austen-llama's tokenizer.json, copied beside it) the
perplexity of `eval.txt` as `shears eval --seq-len 32` computes it (`ppl.*`).
"""
import json, math, os, sys
import torch
from safetensors.torch import save_file, load_file

torch.set_num_threads(2)

# transformers computes RMSNorm in float32 and the causal-LM loss on logits cast to float32, even
# for a float64 model; a float32-contaminated reference is off by up to 4e-4 in SmolLM2's norm
# gradients. The goldens use true float64 throughout: RMSNorm in the input dtype, and the loss
# below (mean cross-entropy over every sequence's tokens 1..T-1, as transformers defines it).
def _rms_forward(self, h):
    var = h.pow(2).mean(-1, keepdim=True)
    return self.weight * (h * torch.rsqrt(var + self.variance_epsilon))

def _gemma_rms_forward(self, h):
    var = h.pow(2).mean(-1, keepdim=True)
    return (h * torch.rsqrt(var + self.eps)) * (1.0 + self.weight)

def _eager_f64(module, query, key, value, attention_mask, dropout=0.0, scaling=None, softcap=None, **kwargs):
    """Gemma's eager attention with the softmax in the input dtype (transformers upcasts to float32 only)."""
    from transformers.models.gemma2.modeling_gemma2 import repeat_kv
    if scaling is None:
        scaling = module.head_dim ** -0.5
    k = repeat_kv(key, module.num_key_value_groups)
    v = repeat_kv(value, module.num_key_value_groups)
    w = torch.matmul(query, k.transpose(2, 3)) * scaling
    if softcap is not None:
        w = torch.tanh(w / softcap) * softcap
    if attention_mask is not None:
        w = w + attention_mask
    w = torch.nn.functional.softmax(w, dim=-1)
    return torch.matmul(w, v).transpose(1, 2).contiguous(), w

def _patch_norms():
    import transformers.models.llama.modeling_llama as ml
    import transformers.models.qwen2.modeling_qwen2 as mq
    import transformers.models.qwen3.modeling_qwen3 as mq3
    import transformers.models.gemma2.modeling_gemma2 as mg2
    import transformers.models.gemma3.modeling_gemma3 as mg3
    ml.LlamaRMSNorm.forward = _rms_forward
    mq.Qwen2RMSNorm.forward = _rms_forward
    mq3.Qwen3RMSNorm.forward = _rms_forward   # the per-head q/k norms too
    mg2.Gemma2RMSNorm.forward = _gemma_rms_forward
    mg3.Gemma3RMSNorm.forward = _gemma_rms_forward
    mg2.eager_attention_forward = _eager_f64
    mg3.eager_attention_forward = _eager_f64

def causal_loss(model, ids, reduction="mean"):
    logits = model(input_ids=ids).logits
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction=reduction)
    return loss, logits

def build(kind, **kw):
    from transformers import LlamaConfig, Qwen2Config, LlamaForCausalLM, Qwen2ForCausalLM
    if kind == "qwen2":
        return Qwen2ForCausalLM(Qwen2Config(**kw))
    if kind == "qwen3":
        from transformers import Qwen3Config, Qwen3ForCausalLM
        return Qwen3ForCausalLM(Qwen3Config(**kw))
    if kind == "mistral":
        from transformers import MistralConfig, MistralForCausalLM
        return MistralForCausalLM(MistralConfig(**kw))
    if kind == "gemma2":
        from transformers import Gemma2Config, Gemma2ForCausalLM
        return Gemma2ForCausalLM(Gemma2Config(**kw))
    if kind == "gemma3":
        from transformers import Gemma3TextConfig, Gemma3ForCausalLM
        return Gemma3ForCausalLM(Gemma3TextConfig(**kw))
    return LlamaForCausalLM(LlamaConfig(**kw))

BASE = dict(hidden_size=64, num_hidden_layers=2, vocab_size=64, intermediate_size=96, rms_norm_eps=1e-6,
            max_position_embeddings=64, initializer_range=0.08, attn_implementation="sdpa")

CASES = {
    # name: (kind, config overrides, stored dtype)
    "mha-untied-bias": ("llama", dict(num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=False,
                                      attention_bias=True, mlp_bias=True), torch.float32),
    "gqa-tied-llama3": ("llama", dict(num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                                      rope_parameters={"rope_type": "llama3", "rope_theta": 10000.0, "factor": 4.0,
                                                       "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                       "original_max_position_embeddings": 16}), torch.bfloat16),
    "qwen2-bias": ("qwen2", dict(num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
                                 rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}), torch.bfloat16),
    "headdim-linear": ("llama", dict(num_attention_heads=4, num_key_value_heads=1, head_dim=32, tie_word_embeddings=True,
                                     rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0}), torch.float16),
    # Built from a GQA model by slicing, as a pruned model: layer 0 keeps KV head 1 (query heads 2, 3)
    # and 56 of 96 MLP channels; layer 1 keeps both KV heads and 80 channels.
    "uneven-pruned": ("llama", dict(num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False), torch.bfloat16),
    # Qwen3: per-head q/k RMSNorm before rotary; head_dim 24 ≠ hidden / heads = 16, one KV head, tied.
    "qwen3-kv1-tied-headdim": ("qwen3", dict(num_attention_heads=4, num_key_value_heads=1, head_dim=24, tie_word_embeddings=True,
                                             rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}), torch.bfloat16),
    "qwen3-gqa-untied": ("qwen3", dict(num_attention_heads=4, num_key_value_heads=2, head_dim=16, tie_word_embeddings=False,
                                       rope_parameters={"rope_type": "default", "rope_theta": 10000.0}), torch.float32),
    "qwen3-eval": ("qwen3", dict(hidden_size=32, vocab_size=8000, intermediate_size=48, num_attention_heads=4, num_key_value_heads=2,
                                 head_dim=16, tie_word_embeddings=True,
                                 rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}), torch.bfloat16),
    # Sliding windows shorter than the 9-token sequences: Mistral (every layer), Qwen2 (layers from
    # max_window_layers on).
    "mistral-window": ("mistral", dict(num_attention_heads=4, num_key_value_heads=2, sliding_window=4, tie_word_embeddings=False,
                                       rope_parameters={"rope_type": "default", "rope_theta": 10000.0}), torch.float32),
    "qwen2-window": ("qwen2", dict(num_attention_heads=4, num_key_value_heads=2, use_sliding_window=True, sliding_window=3,
                                  max_window_layers=1, tie_word_embeddings=True, attn_implementation="eager",
                                  rope_parameters={"rope_type": "default", "rope_theta": 10000.0}), torch.bfloat16),
    # Gemma 2: soft-caps small enough that tanh bends, window 4 on layers 0 and 2, scaling by
    # query_pre_attn_scalar 24 (not head_dim 16), tied.
    "gemma2-softcap-window": ("gemma2", dict(num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                             query_pre_attn_scalar=24, sliding_window=4, attn_logit_softcapping=2.0,
                                             final_logit_softcapping=3.0, tie_word_embeddings=True, attn_implementation="eager",
                                             rope_parameters={"rope_type": "default", "rope_theta": 10000.0}), torch.bfloat16),
    # Gemma 3: one KV head, head_dim 24, layer_types mixing windows of 3 with full layers, linear
    # rope scaling on full layers only, a different local base on sliding ones.
    "gemma3-kv1-window": ("gemma3", dict(num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=1, head_dim=24,
                                         query_pre_attn_scalar=16, sliding_window=3,
                                         layer_types=["sliding_attention", "full_attention", "sliding_attention", "sliding_attention"],
                                         tie_word_embeddings=True, attn_implementation="eager",
                                         rope_parameters={"full_attention": {"rope_type": "linear", "factor": 2.0, "rope_theta": 1000000.0},
                                                          "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}),
                          torch.float32),
    "gemma3-eval": ("gemma3", dict(hidden_size=32, vocab_size=8000, intermediate_size=48, num_attention_heads=4, num_key_value_heads=2,
                                   head_dim=16, query_pre_attn_scalar=16, sliding_window=8, sliding_window_pattern=2,
                                   tie_word_embeddings=True, attn_implementation="eager"), torch.bfloat16),
}

def randomize(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                # Gemma's norms scale by 1 + w (w initialised to zeros).
                base = 0 if type(model).__name__.startswith("Gemma") else 1
                p.copy_(base + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))

def prune(model, layer, kv_keep, ffn_keep):
    attn = model.model.layers[layer].self_attn
    mlp = model.model.layers[layer].mlp
    d = attn.head_dim
    rep = attn.num_key_value_groups
    kv_rows = torch.cat([torch.arange(h * d, (h + 1) * d) for h in kv_keep])
    q_rows = torch.cat([torch.arange(h * rep * d, (h + 1) * rep * d) for h in kv_keep])
    def sl(lin, rows=None, cols=None):
        w = lin.weight.data
        if rows is not None: w = w[rows]
        if cols is not None: w = w[:, cols]
        new = torch.nn.Linear(w.shape[1], w.shape[0], bias=lin.bias is not None, dtype=w.dtype)
        new.weight.data = w.clone()
        if lin.bias is not None:
            new.bias.data = (lin.bias.data[rows] if rows is not None else lin.bias.data).clone()
        return new
    attn.q_proj = sl(attn.q_proj, rows=q_rows)
    attn.k_proj = sl(attn.k_proj, rows=kv_rows)
    attn.v_proj = sl(attn.v_proj, rows=kv_rows)
    attn.o_proj = sl(attn.o_proj, cols=q_rows)
    keep = torch.tensor(ffn_keep)
    mlp.gate_proj = sl(mlp.gate_proj, rows=keep)
    mlp.up_proj = sl(mlp.up_proj, rows=keep)
    mlp.down_proj = sl(mlp.down_proj, cols=keep)
    return {"num_attention_heads": len(kv_keep) * rep, "num_key_value_heads": len(kv_keep), "intermediate_size": len(ffn_keep)}

def state_for_saving(model):
    sd = {k: v for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    return sd

def greedy(model, prompt, n):
    ids = prompt.clone()
    with torch.no_grad():
        for _ in range(n):
            nxt = model(input_ids=ids[None]).logits[0, -1].argmax()
            ids = torch.cat([ids, nxt.reshape(1)])
    return ids[len(prompt):]

def eval_golden(model, out):
    """Perplexity as `shears eval --seq-len 32` computes it: the text tokenized without special
    tokens, non-overlapping windows of 32, the tail dropped, each window predicting its tokens 2..32."""
    from tokenizers import Tokenizer
    import shutil
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    shutil.copy(os.path.join(root, "Fixtures/models/austen-llama/tokenizer.json"), out)
    text = open(os.path.join(root, "Fixtures/text/austen-evaluation/persuasion.txt"), encoding="utf-8").read()[:1500]
    open(os.path.join(out, "eval.txt"), "w", encoding="utf-8").write(text)
    ids = Tokenizer.from_file(os.path.join(out, "tokenizer.json")).encode(text, add_special_tokens=False).ids
    seq = 32
    windows = len(ids) // seq
    x = torch.tensor(ids[:seq * windows]).reshape(windows, seq)
    with torch.no_grad():
        nll = causal_loss(model, x, reduction="sum")[0].item()
    n = windows * (seq - 1)
    print(f"  eval.txt: {windows} windows of {seq}, ppl {math.exp(nll / n):.10f}")
    return {"ppl.nll_sum": torch.tensor([nll], dtype=torch.float64), "ppl.predicted": torch.tensor([n], dtype=torch.int64),
            "ppl.perplexity": torch.tensor([math.exp(nll / n)], dtype=torch.float64)}

def tiny(out_root, only=None):
    for ci, (name, (kind, over, dtype)) in enumerate(CASES.items()):
        if only and not name.startswith(only):
            continue
        torch.manual_seed(1000 + ci)
        gen = torch.Generator().manual_seed(2000 + ci)
        model = build(kind, **{**BASE, **over})
        randomize(model, gen)
        per_layer = {}
        if name == "uneven-pruned":
            per_layer["0"] = prune(model, 0, [1], sorted(torch.randperm(96, generator=gen)[:56].tolist()))
            per_layer["1"] = prune(model, 1, [0, 1], sorted(torch.randperm(96, generator=gen)[:80].tolist()))
            per_layer = {k: {a: b for a, b in v.items() if b != getattr(model.config, a)} for k, v in per_layer.items()}
        # Round to the stored dtype, then compute in float64 from exactly those values.
        stored = {k: v.to(dtype).contiguous() for k, v in state_for_saving(model).items()}
        model = model.double()
        with torch.no_grad():
            for k, v in model.state_dict().items():
                src = stored.get(k, stored.get("model.embed_tokens.weight") if k == "lm_head.weight" else None)
                v.copy_(src.double())
        out = os.path.join(out_root, name)
        os.makedirs(out, exist_ok=True)
        save_file(stored, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
        model.config.save_pretrained(out)
        cfg = json.load(open(os.path.join(out, "config.json")))
        cfg.pop("transformers_version", None)
        if per_layer:
            cfg["per_layer_config"] = per_layer
        json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=2, sort_keys=True)

        B, T = 3, 9
        tokens = torch.randint(0, model.config.vocab_size, (B, T), generator=gen)
        model.zero_grad()
        loss, logits = causal_loss(model, tokens)
        loss.backward()
        golden = {"tokens": tokens.to(torch.int32), "loss": loss.detach().reshape(1),
                  "logits": logits.detach().reshape(B * T, -1).float()}
        params = dict(model.named_parameters())
        for k, p in params.items():
            golden["grad." + k] = p.grad.detach().float().clone()
        fisher = {k: torch.zeros_like(p) for k, p in params.items()}
        for b in range(B):
            model.zero_grad()
            causal_loss(model, tokens[b:b + 1])[0].backward()
            for k, p in params.items():
                fisher[k] += p.grad.detach() ** 2
        for k, f in fisher.items():
            golden["fisher." + k] = f.float()
        if kind in ("qwen3", "gemma2", "gemma3", "mistral") or name.endswith("window"):
            golden["greedy.prompt"] = tokens[0, :4].to(torch.int32)
            golden["greedy.continuation"] = greedy(model, tokens[0, :4], 8).to(torch.int32)
        if name.endswith("-eval"):
            golden.update(eval_golden(model, out))
        save_file({k: v.contiguous() for k, v in golden.items()}, os.path.join(out, "golden.safetensors"))
        print(f"{name}: loss {loss.item():.10f}, {sum(p.numel() for p in params.values())} parameters")

def real(hf_dir, out_path):
    from transformers import LlamaForCausalLM
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(hf_dir, "tokenizer.json"))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    text = open(os.path.join(root, "Fixtures/text/austen-evaluation/persuasion.txt"), encoding="utf-8").read()
    ids = tok.encode(text[:40000], add_special_tokens=False).ids
    model = LlamaForCausalLM.from_pretrained(hf_dir, dtype=torch.float64, attn_implementation="sdpa")
    model.eval()
    golden = {}
    # Perplexity, LLM-Pruner protocol: non-overlapping windows of 128, tail dropped, 8 windows.
    seq, windows = 128, 8
    x = torch.tensor(ids[:seq * windows]).reshape(windows, seq)
    nll, n = 0.0, 0
    with torch.no_grad():
        for w in range(windows):
            nll += causal_loss(model, x[w:w + 1], reduction="sum")[0].item()
            n += seq - 1
    golden["ppl.tokens"] = x.reshape(-1).to(torch.int32)
    golden["ppl.nll_sum"] = torch.tensor([nll], dtype=torch.float64)
    golden["ppl.predicted"] = torch.tensor([n], dtype=torch.int64)
    print(f"{hf_dir}: persuasion ppl (seq 128, 8 windows): {math.exp(nll / n):.6f}")
    # Loss, logits slice and gradient summaries on 2 × 32 tokens.
    B, T = 2, 32
    xb = torch.tensor(ids[1024:1024 + B * T]).reshape(B, T)
    model.zero_grad()
    loss, logits = causal_loss(model, xb)
    loss.backward()
    logits = logits.detach().reshape(B * T, -1)
    golden["grad.tokens"] = xb.to(torch.int32)
    golden["grad.loss"] = loss.detach().reshape(1)
    golden["grad.logits_head"] = logits[:, :512].float().contiguous()
    golden["grad.logsumexp"] = torch.logsumexp(logits, dim=-1)
    params = dict(model.named_parameters())
    names = list(params.keys())
    grads = {k: p.grad.detach().clone() for k, p in params.items()}
    golden["grad.norms"] = torch.tensor([grads[k].norm().item() for k in names], dtype=torch.float64)
    golden["grad.weight_dots"] = torch.tensor([(grads[k] * params[k].detach()).sum().item() for k in names], dtype=torch.float64)
    for k in names:
        g, w = grads[k], params[k].detach()
        if "norm" in k:
            golden["full." + k] = g.float()
        elif any(s in k for s in ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj")):
            golden["rows." + k] = (w * g).abs().sum(dim=1).float()    # LLM-Pruner param_first, per output row
        elif any(s in k for s in ("o_proj", "down_proj")):
            golden["cols." + k] = (w * g).abs().sum(dim=0).float()    # per input column
    fisher = {k: torch.zeros_like(p) for k, p in params.items()}
    for b in range(B):
        model.zero_grad()
        causal_loss(model, xb[b:b + 1])[0].backward()
        for k, p in params.items():
            fisher[k] += p.grad.detach() ** 2
    golden["fisher.sums"] = torch.tensor([fisher[k].sum().item() for k in names], dtype=torch.float64)
    golden["fisher.full.model.norm.weight"] = fisher["model.norm.weight"].float()
    golden["fisher.full.model.layers.0.self_attn.k_proj.weight"] = fisher["model.layers.0.self_attn.k_proj.weight"][:16].float().contiguous()
    # Greedy continuations (float32, as the engine computes).
    model = model.float()
    texts = {}
    eos = set(model.generation_config.eos_token_id if isinstance(model.generation_config.eos_token_id, list)
              else [model.generation_config.eos_token_id])
    prompts = ["The capital of France is", "Once upon a time, there was a little", "1, 2, 3, 4,"]
    for i, p in enumerate(prompts):
        pid = tok.encode(p, add_special_tokens=False).ids
        with torch.no_grad():
            gen = model.generate(torch.tensor([pid]), max_new_tokens=16, do_sample=False, pad_token_id=2)
        golden[f"greedy.{i}.prompt"] = torch.tensor(pid, dtype=torch.int32)
        golden[f"greedy.{i}.continuation"] = gen[0, len(pid):].to(torch.int32)
        texts[f"greedy.{i}.prompt"] = p
        texts[f"greedy.{i}.text"] = tok.decode([t for t in gen[0, len(pid):].tolist() if t not in eos])
        print(f"greedy {p!r} → {tok.decode(gen[0, len(pid):].tolist())!r}")
    meta = {"names": json.dumps(names), **texts}
    save_file({k: v.contiguous() for k, v in golden.items()}, out_path, metadata=meta)

if __name__ == "__main__":
    _patch_norms()
    if sys.argv[1] == "tiny":
        tiny(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
    else:  # "real" (or the old name "smollm2")
        real(sys.argv[2], sys.argv[3])
