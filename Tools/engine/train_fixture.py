"""Trains the bundled default model: a small multi-head-attention LlamaForCausalLM on the Austen
calibration novels with the byte-level BPE from Fixtures/tokenizers/bl-bpe, stored in bf16.

    python train_fixture.py OUT_DIR [MINUTES]

Deterministic set-up (seed 0); training runs for a wall-clock budget (default 20 minutes) with a
cosine learning-rate schedule over the elapsed fraction of that budget, so the number of steps (and
the result) depends on the machine's speed and load. The held-out perplexity is measured on persuasion.txt by the `shears eval`
protocol (non-overlapping 128-token windows, tail dropped) on the stored bf16 weights.
"""
import json, math, os, sys, time, shutil
import torch
from tokenizers import Tokenizer
from transformers import LlamaConfig, LlamaForCausalLM
from safetensors.torch import save_file

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
out = sys.argv[1]
minutes = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0
torch.manual_seed(0)
torch.set_num_threads(int(os.environ.get("TRAIN_THREADS", "2")))
tok_path = os.path.join(root, "Fixtures/tokenizers/bl-bpe/tokenizer.json")
tok = Tokenizer.from_file(tok_path)
cal = os.path.join(root, "Fixtures/text/austen-calibration")
texts = [open(os.path.join(cal, f), encoding="utf-8").read() for f in sorted(os.listdir(cal)) if f.endswith(".txt")]
ids = []
for t in texts:
    ids += tok.encode(t, add_special_tokens=False).ids + [0]   # <|endoftext|> between novels
data = torch.tensor(ids, dtype=torch.long)
held = tok.encode(open(os.path.join(root, "Fixtures/text/austen-evaluation/persuasion.txt"), encoding="utf-8").read(),
                  add_special_tokens=False).ids
print(f"train tokens {len(ids)}, held-out tokens {len(held)}", flush=True)

config = LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=192, intermediate_size=512, num_hidden_layers=4,
                     num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512, rms_norm_eps=1e-5,
                     rope_theta=10000.0, tie_word_embeddings=True, bos_token_id=0, eos_token_id=0,
                     initializer_range=0.02, attn_implementation="sdpa")
model = LlamaForCausalLM(config)
print(f"parameters {sum(p.numel() for p in model.parameters())}", flush=True)
seq, batch = 128, 16
opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1)
gen = torch.Generator().manual_seed(1)

def get_batch():
    starts = torch.randint(0, len(data) - seq - 1, (batch,), generator=gen)
    return torch.stack([data[s:s + seq] for s in starts])

budget = minutes * 60
t0 = time.time()
step, warmup = 0, 30
while True:
    progress = (time.time() - t0) / budget
    if progress >= 1:
        break
    lr = 3e-3 * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
    for g in opt.param_groups:
        g["lr"] = lr
    x = get_batch()
    loss = model(input_ids=x, labels=x).loss
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    if step % 25 == 0:
        print(f"step {step} loss {loss.item():.4f} lr {lr:.2e} {time.time() - t0:.0f}s", flush=True)
    step += 1

# Store bf16; measure the held-out perplexity on exactly the stored values.
stored = {k: v.detach().to(torch.bfloat16).contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
with torch.no_grad():
    for k, v in model.state_dict().items():
        v.copy_(stored["model.embed_tokens.weight" if k == "lm_head.weight" else k].float())
model.eval()
n_win = (len(held)) // 128
nll, n = 0.0, 0
with torch.no_grad():
    for w in range(0, n_win, 32):
        xb = torch.tensor(held[w * 128:min(n_win, w + 32) * 128]).reshape(-1, 128)
        logits = model(input_ids=xb).logits
        nll += torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), xb[:, 1:].reshape(-1), reduction="sum").item()
        n += xb.shape[0] * 127
ppl = math.exp(nll / n)
print(f"held-out persuasion.txt: {n_win} windows of 128, {n} predicted tokens, perplexity {ppl:.4f}", flush=True)

os.makedirs(out, exist_ok=True)
save_file(stored, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
config.torch_dtype = "bfloat16"
cfg = config.to_dict()
for k in ["transformers_version"] + ['_name_or_path', 'id2label', 'label2id', 'return_dict', 'output_attentions', 'output_hidden_states', 'problem_type', 'chunk_size_feed_forward', 'is_encoder_decoder', 'pretraining_tp', 'dtype', 'use_cache', 'tie_encoder_decoder', 'cross_attention_hidden_size', 'add_cross_attention', 'finetuning_task', 'tokenizer_class', 'prefix', 'sep_token_id', 'decoder_start_token_id', 'task_specific_params', 'torchscript', 'pruned_heads', 'tf_legacy_loss', 'use_bfloat16']:
    cfg.pop(k, None)
cfg["architectures"] = ["LlamaForCausalLM"]
cfg["torch_dtype"] = "bfloat16"
json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=2, sort_keys=True)
shutil.copy(tok_path, os.path.join(out, "tokenizer.json"))
json.dump({"steps": step, "seq_len": seq, "batch": batch, "train_tokens": len(ids), "minutes": round((time.time() - t0) / 60, 1),
           "heldout_windows": n_win, "heldout_predicted": n, "heldout_perplexity": ppl,
           "torch": torch.__version__}, open(os.path.join(out, "training.json"), "w"), indent=2)
