"""A tiny random Gemma 2 that llama.cpp's gemma2 loader can express (query_pre_attn_scalar = head_dim,
both soft-caps on, small enough to bend tanh), with the austen-llama tokenizer, saved in float32.

    python make_tiny_gemma2.py OUT_DIR TOKENIZER_JSON
"""
import shutil, sys, torch
from transformers import Gemma2Config, Gemma2ForCausalLM
out, tok = sys.argv[1], sys.argv[2]
torch.manual_seed(17)
cfg = Gemma2Config(vocab_size=8000, hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
                   num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=16, sliding_window=8,
                   attn_logit_softcapping=4.0, final_logit_softcapping=6.0, max_position_embeddings=256,
                   initializer_range=0.08, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=0)
m = Gemma2ForCausalLM(cfg)
with torch.no_grad():
    for n, p in m.named_parameters():
        if "norm" in n: p.copy_(0.2 * torch.randn(p.shape))
m.save_pretrained(out, safe_serialization=True)
shutil.copy(tok, out + "/tokenizer.json")
