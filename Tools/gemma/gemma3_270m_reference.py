"""transformers' reference for the real Gemma 3 270M GGUF (loaded with gguf_file=, dequantized, float64):
the token ids of a text (the GGUF's own tokenizer, no special tokens) and the perplexity under both
protocols `shears eval` implements: no BOS (non-overlapping windows of SEQ tokens, each predicting
its tokens 2..SEQ) and BOS at the start of every window (BOS + the next SEQ-1 tokens, all predicted).

    python gemma3_270m_reference.py GGUF TEXT SEQ WINDOWS OUT_TOKENS_JSON
Prints one JSON line: {"tokens": n, "ppl_no_bos": .., "ppl_bos": .., "bos": id}.
"""
import json, math, os, sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
gguf, text, seq, windows, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
folder, name = os.path.dirname(os.path.abspath(gguf)), os.path.basename(gguf)
tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
ids = tok(open(text, encoding="utf-8").read()[:40000], add_special_tokens=False).input_ids
json.dump(ids, open(out, "w"))
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float64, attn_implementation="eager").eval()
bos = tok.bos_token_id
def ppl(windows_ids, skip_first):
    nll, n = 0.0, 0
    for w in windows_ids:
        x = torch.tensor([w])
        with torch.no_grad():
            lp = torch.log_softmax(model(input_ids=x).logits[0].double(), -1)
        for i in range(1, len(w)):
            nll -= lp[i - 1, w[i]].item(); n += 1
    return math.exp(nll / n)
no_bos = [ids[i * seq:(i + 1) * seq] for i in range(windows)]
with_bos = [[bos] + ids[i * (seq - 1):(i + 1) * (seq - 1)] for i in range(windows)]
print(json.dumps({"tokens": len(ids), "ppl_no_bos": ppl(no_bos, False), "ppl_bos": ppl(with_bos, True), "bos": bos,
                  "add_bos_token": getattr(tok, "add_bos_token", None)}))
