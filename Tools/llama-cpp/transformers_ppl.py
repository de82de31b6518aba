"""transformers' float64 perplexity of a text under llama-perplexity's protocol: the text tokenized
with the folder's tokenizer.json (no special tokens; BOS prepended and put in place of each chunk's
first token when ADD_BOS is 1), chunks of N_CTX tokens, tokens N_CTX/2+1 .. N_CTX-1 of each scored.

    python transformers_ppl.py FOLDER TEXT N_CTX ADD_BOS BOS_ID
"""
import sys, math, torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM
folder, text, n_ctx, add_bos, bos = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", int(sys.argv[5])
ids = Tokenizer.from_file(folder + "/tokenizer.json").encode(open(text, encoding="utf-8").read(), add_special_tokens=False).ids
if add_bos: ids = [bos] + ids
m = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float64).eval()
nll, n = 0.0, 0
for c in range(len(ids) // n_ctx):
    x = torch.tensor(ids[c * n_ctx:(c + 1) * n_ctx])
    if add_bos: x[0] = bos
    with torch.no_grad(): lp = torch.log_softmax(m(input_ids=x[None]).logits[0], -1)
    first = n_ctx // 2
    for i in range(first + 1, n_ctx):
        nll -= lp[i - 1, x[i]].item(); n += 1
print(f"{len(ids)} tokens, {len(ids) // n_ctx} chunks, ppl {math.exp(nll / n):.6f}")
