"""Differential fuzzing of `shears tokenize` against the Hugging Face `tokenizers` library.

Usage: fuzz_against_library.py SHEARS_BINARY SEED TOKENIZER_NAME...
  (names are folders under Fixtures/tokenizers; run from the repository root)

Encodes 3,000 random lines (characters of the adversarial sample, whitespace runs, contractions,
special-token look-alikes) with `shears tokenize --per-line` and with `Tokenizer.encode`, and
decodes 25 random id lists (with and without skipping special tokens) both ways; prints the
first mismatches and a count per tokenizer. Exit status 1 when anything differs.
"""
import random
import subprocess
import sys

from tokenizers import Tokenizer

shears, seed, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
random.seed(seed)
adv = open("Fixtures/text/adversarial.txt", encoding="utf-8").read().replace("\n", " ")
pool = sorted(set(adv)) + [" ", "  ", "\t", "'s", "'T", "'ll", "<|endoftext|>", "<|im_start|>", "<s>", "</s>",
                           "HELLO", "hi", "ing", "Café", "e\u0301", "0", "123", "\u2581", " tab", "[CLS]", "wor",
                           "\u00a0", "\u3000", "\r", "\r\n"]
lines = ["".join(random.choice(pool) for _ in range(random.randint(0, 40))) for _ in range(3000)]
lines = [line.replace("\n", " ") for line in lines]
with open("/tmp/shears-fuzz-lines.txt", "w", encoding="utf-8", newline="") as f:
    f.write("\n".join(lines) + "\n")

failures = 0
for name in names:
    tok = Tokenizer.from_file(f"Fixtures/tokenizers/{name}/tokenizer.json")
    out = subprocess.run([shears, "tokenize", f"Fixtures/tokenizers/{name}", "--text", "/tmp/shears-fuzz-lines.txt",
                          "--per-line"], capture_output=True, text=True, check=True).stdout.split("\n")
    bad = 0
    for i, line in enumerate(lines):
        expected = " ".join(map(str, tok.encode(line).ids))
        if out[i] != expected:
            bad += 1
            if bad <= 2:
                print(f"{name}: encode {line!r}\n  expected {expected}\n  got      {out[i]}")
    size = tok.get_vocab_size(True)
    for k in range(25):
        ids = [random.randrange(size + 3) for _ in range(random.randint(1, 40))]
        skip = k % 2 == 1
        args = [shears, "tokenize", f"Fixtures/tokenizers/{name}", "--decode"] + (["--skip-special-tokens"] if skip else [])
        got = subprocess.run(args, input=" ".join(map(str, ids)).encode(), capture_output=True, check=True).stdout
        expected = tok.decode(ids, skip_special_tokens=skip)
        if got.decode("utf-8") != expected:
            bad += 1
            if bad <= 2:
                print(f"{name}: decode {ids} skip={skip}\n  expected {expected!r}\n  got      {got!r}")
    print(f"{name}: {bad} mismatches")
    failures += bad
sys.exit(1 if failures else 0)
