"""Golden data for Phi-3 in the Swift engine, computed with transformers in float64.

    python make_phi3_goldens.py OUT_DIR        tiny random Phi-3 models → OUT_DIR/<name>/

Each case folder holds config.json, model.safetensors (stored dtype) and golden.safetensors with
the token batch (3 × 9), loss, logits, the gradient and Fisher sum of every parameter (stored names:
the fused qkv_proj and gate_up_proj), and a greedy continuation of 8 tokens after a 4-token prompt (transformers' generate, with its
KV cache).
Edge cases: fused projections with GQA and one KV head, partial rotary (partial_rotary_factor 0.5),
longrope with original_max_position_embeddings 8 (the 9-token batch uses the long factors, the
prompt the short ones, and greedy generation switches to the long ones at its 9th position),
sliding_window at least the sequence length, and `phi3-window4` with a window of 4 < 9 (needs
the engine's sliding-window masks). `phi3-eval` (no gradients, to stay small) holds the perplexity of eval.txt at --seq-len 32.
"""
import json, math, os, sys
import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_goldens as mg

torch.set_num_threads(2)

def _patch():
    mg._patch_norms()
    import transformers.models.phi3.modeling_phi3 as mp
    mp.Phi3RMSNorm.forward = mg._rms_forward

BASE = dict(hidden_size=64, num_hidden_layers=2, vocab_size=64, intermediate_size=96, rms_norm_eps=1e-6,
            max_position_embeddings=64, initializer_range=0.08, attn_implementation="eager",
            pad_token_id=0, bos_token_id=1, eos_token_id=2)

def longrope(pairs, gen):
    return {"rope_type": "longrope", "rope_theta": 10000.0,
            "short_factor": [round(1 + 0.5 * i / pairs + 0.1 * float(torch.rand(1, generator=gen)), 4) for i in range(pairs)],
            "long_factor": [round(1 + 6.0 * i / pairs + 0.5 * float(torch.rand(1, generator=gen)), 4) for i in range(pairs)]}

CASES = {
    # name: (config overrides, stored dtype, needs longrope with this many pairs)
    "phi3-gqa-longrope-partial": (dict(num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
                                       partial_rotary_factor=0.5, max_position_embeddings=32,
                                       original_max_position_embeddings=8, sliding_window=64), torch.float32, 4),
    "phi3-mha-tied": (dict(num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=True, sliding_window=16,
                           rope_parameters={"rope_type": "default", "rope_theta": 10000.0}), torch.bfloat16, None),
    "phi3-kv1-longrope-short": (dict(num_attention_heads=4, num_key_value_heads=1, tie_word_embeddings=False,
                                     max_position_embeddings=256, original_max_position_embeddings=64,
                                     sliding_window=None), torch.float32, 8),
    "phi3-window4": (dict(num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False, sliding_window=4,
                          rope_parameters={"rope_type": "default", "rope_theta": 10000.0}), torch.float32, None),
    "phi3-eval": (dict(hidden_size=32, vocab_size=8000, intermediate_size=48, num_attention_heads=4, num_key_value_heads=2,
                       tie_word_embeddings=False, partial_rotary_factor=0.75, max_position_embeddings=128,
                       original_max_position_embeddings=16, sliding_window=128), torch.bfloat16, 3),
}

def build(over, gen, pairs):
    from transformers import Phi3Config, Phi3ForCausalLM
    kw = {**BASE, **over}
    if pairs is not None:
        rp = longrope(pairs, gen)
        rp["partial_rotary_factor"] = kw.get("partial_rotary_factor", 1.0)
        kw["rope_parameters"] = rp
    return Phi3ForCausalLM(Phi3Config(**kw))

def cached_greedy(model, prompt, n):
    """transformers' generate (KV cache): longrope picks its factors per call from the largest
    position, so keys cached before the switch keep the short factors."""
    model.generation_config.eos_token_id = None
    with torch.no_grad():
        out = model.generate(prompt[None], max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0)
    return out[0, len(prompt):]

def main(out_root, only=None):
    for ci, (name, (over, dtype, pairs)) in enumerate(CASES.items()):
        if only and not name.startswith(only):
            continue
        torch.manual_seed(3000 + ci)
        gen = torch.Generator().manual_seed(4000 + ci)
        model = build(over, gen, pairs)
        mg.randomize(model, gen)
        stored = {k: v.to(dtype).contiguous() for k, v in mg.state_for_saving(model).items()}
        model = model.double()
        with torch.no_grad():
            for k, v in model.state_dict().items():
                src = stored.get(k, stored.get("model.embed_tokens.weight") if k == "lm_head.weight" else None)
                v.copy_(src.double())
        model.eval()
        out = os.path.join(out_root, name)
        os.makedirs(out, exist_ok=True)
        save_file(stored, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
        model.config.save_pretrained(out)
        cfg = json.load(open(os.path.join(out, "config.json")))
        cfg.pop("transformers_version", None)
        json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=2, sort_keys=True)
        B, T = 3, 9
        tokens = torch.randint(3, model.config.vocab_size, (B, T), generator=gen)
        model.zero_grad()
        loss, logits = mg.causal_loss(model, tokens)
        loss.backward()
        golden = {"tokens": tokens.to(torch.int32), "loss": loss.detach().reshape(1),
                  "logits": logits.detach().reshape(B * T, -1).float()}
        params = dict(model.named_parameters())
        # phi3-eval (a vocabulary of 8000) keeps forward goldens only, to stay small.
        for k, p in params.items():
            if name != "phi3-eval":
                golden["grad." + k] = p.grad.detach().float().clone()
        fisher = {k: torch.zeros_like(p) for k, p in params.items()}
        for b in range(B if name != "phi3-eval" else 0):
            model.zero_grad()
            mg.causal_loss(model, tokens[b:b + 1])[0].backward()
            for k, p in params.items():
                fisher[k] += p.grad.detach() ** 2
        for k, f in fisher.items():
            if name != "phi3-eval":
                golden["fisher." + k] = f.float()
        golden["greedy.prompt"] = tokens[0, :4].to(torch.int32)
        golden["greedy.continuation"] = cached_greedy(model, tokens[0, :4], 8).to(torch.int32)
        if name == "phi3-eval":
            golden.update(mg.eval_golden(model, out))
        save_file({k: v.contiguous() for k, v in golden.items()}, os.path.join(out, "golden.safetensors"))
        print(f"{name}: loss {loss.item():.10f}, {sum(p.numel() for p in params.values())} parameters")

if __name__ == "__main__":
    _patch()
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
