"""Loads a folder written by `shears convert SmolLM2.gguf DIR` with transformers (offline) and
checks it against Fixtures/gguf/smollm2/: logits on the fixed prompt, and the ids our
tokenizer.json gives (tokenizers library and AutoTokenizer) on text.txt. Prints a report; exits 1
on a mismatch."""
import json
import os
import sys

import numpy as np

folder, goldens = sys.argv[1:3]
os.environ["HF_HUB_OFFLINE"] = "1"
import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM, AutoTokenizer

ok = True
golden = json.load(open(os.path.join(goldens, "logits.json")))
last = np.fromfile(os.path.join(goldens, "logits-last.f32"), dtype="<f4")

tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
text = open(os.path.join(goldens, "text.txt"), encoding="utf-8").read()
want = json.load(open(os.path.join(goldens, "token-ids.json")))["ids"]
got = tok.encode(text, add_special_tokens=False).ids
print(f"tokenizers: {len(got)} ids on text.txt, {'identical to' if got == want else 'DIFFERENT from'} the reference ({len(want)})")
ok &= got == want
auto = AutoTokenizer.from_pretrained(folder)
got2 = auto(text, add_special_tokens=True)["input_ids"]
print(f"AutoTokenizer ({type(auto).__name__}): {'identical' if got2 == want else 'DIFFERENT'} ids (special tokens on: no BOS added, as the GGUF says)")
ok &= got2 == want

model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
ids = tok.encode(golden["prompt"], add_special_tokens=False).ids
assert ids == golden["ids"], (ids, golden["ids"])
with torch.no_grad():
    logits = model(torch.tensor([ids])).logits[0].float().numpy()
diff_last = float(np.abs(logits[-1] - last).max())
diff_top = 0.0
same_top = True
for p, g in enumerate(golden["positions"]):
    order = [int(i) for i in np.argsort(-logits[p], kind="stable")[:10]]
    same_top &= order[:5] == g["ids"][:5]
    diff_top = max(diff_top, max(abs(float(logits[p][i]) - v) for i, v in zip(g["ids"], g["logits"])))
print(f"transformers {model.__class__.__name__}: max |logit - golden| = {diff_last:.3g} (last position, all 49152), {diff_top:.3g} (top-10, every position); top-5 ids {'equal' if same_top else 'DIFFER'}")
print("next token:", repr(tok.decode([int(np.argmax(logits[-1]))])))
ok &= diff_last < 1e-3 and diff_top < 1e-3 and same_top
print("RESULT:", "PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
