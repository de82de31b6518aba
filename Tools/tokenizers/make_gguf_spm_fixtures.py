"""SentencePiece (`tokenizer.ggml.model = llama`) GGUF tokenizer fixtures and the ids transformers
gives with them.

    python make_gguf_spm_fixtures.py OUT_DIR [GEMMA3_GGUF]

Writes OUT_DIR/spm-{llama,phi3,gemma3}.gguf: metadata-only GGUF files (no tensors) holding the
vocabulary of Fixtures/tokenizers/sp-bpe (8,000 SentencePiece-style BPE pieces with <0x00>..<0xFF>
byte tokens) as llama.cpp's converter stores one: tokens, scores (-id, a BPE SentencePiece
model's ranks), token types (2 unknown, 3 control, 6 byte, 1 normal; one user-defined `<tool>`
token, type 4, and for the gemma3 file a token of two spaces spelled as real spaces, as Gemma
files store them). The architecture picks transformers' builder: LlamaTokenizer, Phi-3's
Prepend + Replace normalizer, Gemma's respelled spaces and position-ordered merges.

OUT_DIR/spm-gguf-ids.json: for each file and each text of TEXTS, the ids of
`AutoTokenizer.from_pretrained(dir, gguf_file=...)` (special tokens added, as encode() does).
With GEMMA3_GGUF (the real Gemma 3 270M file, not committed): OUT_DIR/gemma3-270m-ids.json too.
"""
import json, os, shutil, sys, tempfile
import numpy as np
import gguf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

def texts():
    austen = open(os.path.join(ROOT, "Fixtures/text/austen-evaluation/persuasion.txt"), encoding="utf-8").read()[:4000]
    return {
        "austen": austen,
        "unicode": "Café déjà vu — naïve coöperation; Ελληνικά, русский, 日本語のテキスト, 한국어, עברית.",
        "digits": "In 1815, 3.14159 and 2,718,281 were 0042 numbers: 1234567890 x 9876543210.",
        "whitespace": "  two leading spaces,\tone tab\t\tand two,\n\nblank line,   three spaces   and trailing  ",
        "byte-fallback": "emoji 😀🎉🧪, rare ꙮ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢, control \u0001\u0007 chars, and <tool> stays whole <s> too.",
        "leading-space": " hello world",
        "empty-ish": " ",
    }

def write(path, arch, tokens, scores, types, bos=1, eos=2, unk=0):
    w = gguf.GGUFWriter(path, arch)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(bos)
    w.add_eos_token_id(eos)
    w.add_unk_token_id(unk)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

def ids_for(path, named):
    from transformers import AutoTokenizer
    d = tempfile.mkdtemp()
    try:
        shutil.copy(path, os.path.join(d, os.path.basename(path)))
        tok = AutoTokenizer.from_pretrained(d, gguf_file=os.path.basename(path))
        return {name: tok(text).input_ids for name, text in named.items()}
    finally:
        shutil.rmtree(d)

def main(out, gemma=None):
    src = json.load(open(os.path.join(ROOT, "Fixtures/tokenizers/sp-bpe/tokenizer.json"), encoding="utf-8"))
    vocab = sorted(src["model"]["vocab"].items(), key=lambda kv: kv[1])
    tokens = [t for t, _ in vocab] + ["<tool>"]
    types = []
    for i, t in enumerate(tokens):
        if t == "<unk>": types.append(2)
        elif t in ("<s>", "</s>"): types.append(3)
        elif t.startswith("<0x") and len(t) == 6: types.append(6)
        elif t == "<tool>": types.append(4)
        else: types.append(1)
    scores = [float(-i) for i in range(len(tokens))]
    os.makedirs(out, exist_ok=True)
    named = texts()
    golden = {}
    for arch in ("llama", "phi3", "gemma3"):
        toks = list(tokens)
        if arch == "gemma3":
            toks = toks + ["  "]   # Gemma stores runs of spaces as real spaces
        path = os.path.join(out, f"spm-{arch}.gguf")
        write(path, arch, toks, scores + [float(-len(scores))] * (len(toks) - len(scores)), types + [1] * (len(toks) - len(types)))
        golden[os.path.basename(path)] = ids_for(path, named)
        print(f"{path}: {len(toks)} tokens")
    json.dump({"texts": named, "ids": golden}, open(os.path.join(out, "spm-gguf-ids.json"), "w", encoding="utf-8"), ensure_ascii=False)
    if gemma:
        g = {"file": os.path.basename(gemma), "texts": named, "ids": ids_for(gemma, named)}
        json.dump(g, open(os.path.join(out, "gemma3-270m-ids.json"), "w", encoding="utf-8"), ensure_ascii=False)
        print(f"{gemma}: ids of {len(named)} texts")

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
