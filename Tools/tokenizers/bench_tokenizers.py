"""Times the Hugging Face `tokenizers` library on one thread, the way `shears tokenize --benchmark`
times Shears: Tokenizer.from_file, then `encode(text)` on the whole text (add_special_tokens=True)
N times; the first call runs with a cold word cache, the best of N with a warm one.

Usage: bench_tokenizers.py TOKENIZER_JSON TEXT_FILE N [--per-line]
With --per-line, each line (without its newline) is encoded on its own, as `shears tokenize
--per-line` does.
Prints: benchmark bytes=... tokens=... first_s=... best_s=... first_MBps=... best_MBps=...
"""
import os
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
from tokenizers import Tokenizer  # noqa: E402

path, text_path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
per_line = "--per-line" in sys.argv[4:]
tok = Tokenizer.from_file(path)
with open(text_path, "rb") as f:
    raw = f.read()
text = raw.decode("utf-8", errors="replace")
lines = text.split("\n")
if text.endswith("\n"):
    lines.pop()
times = []
count = 0
for _ in range(max(1, n)):
    t0 = time.perf_counter()
    if per_line:
        count = sum(len(tok.encode(line).ids) for line in lines)
    else:
        count = len(tok.encode(text).ids)
    times.append(time.perf_counter() - t0)
mb = len(text.encode("utf-8")) / 1e6
print(f"benchmark bytes={len(text.encode('utf-8'))} tokens={count} first_s={times[0]} best_s={min(times)} "
      f"first_MBps={mb / times[0]} best_MBps={mb / min(times)}")
