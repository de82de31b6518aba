"""Writes the multilingual and adversarial tokenizer sample.

Usage: make_adversarial.py OUT_DIR

OUT_DIR/adversarial.txt is valid UTF-8: accents (precomposed and combining), CJK, Arabic, Hebrew,
Devanagari, Thai, emoji (ZWJ sequences, flags, skin tones, variation selectors), compatibility
characters (ligatures, full-width, circled digits, superscripts), long digit runs, code, runs of
spaces/tabs/newlines, text that looks like special tokens, contractions in several cases.

OUT_DIR/adversarial-invalid-utf8.bin is the same text with invalid UTF-8 byte sequences spliced in
(lone continuation bytes, truncated multi-byte sequences, overlongs, surrogates, 0xFF); readers
replace them with U+FFFD the way Python's errors="replace" and Rust's from_utf8_lossy do.
"""
import os
import sys

LINES = [
    "Hello, world! It's a truth universally acknowledged.",
    "I'M SURE SHE'LL COME; you'RE right, they'Ve gone, we'd've DIDN'T don't won't.",
    "Café, naïve, coöperate, résumé, Ångström, São Paulo, Zürich, Ærøskøbing.",
    "Combining: e\u0301 a\u0308 o\u0302\u0323 A\u030a n\u0303 \u1e9b\u0323 q\u0307\u0323.",
    "Compatibility: \ufb01 \ufb02 \uff21\uff22\uff23\uff11\uff12\uff13 \u2460\u2461\u2462 x\u00b2 \u2163 \u3392 \u00bd \u2026 \u212b \u2126.",
    "日本語のテキストです。中文文本，包括标点符号！한국어 텍스트입니다.",
    "العربية: مرحبا بالعالم. עברית: שלום עולם. हिन्दी: नमस्ते दुनिया। ไทย: สวัสดีชาวโลก",
    "Ελληνικά: Γειά σου Κόσμε. Русский: Привет, мир! Ünïcödé ÇAPS İstanbul ıi ß ẞ ﬀ.",
    "Emoji: 😀😃🤖 👍🏽 👨\u200d👩\u200d👧\u200d👦 🇫🇷🇯🇵 ❤\ufe0f ☺ \U0001f3f3\ufe0f\u200d\U0001f308 🧑🏿\u200d💻",
    "Numbers: 0 7 42 1234 3.14159 1,000,000 12345678901234567890123456789 -0.5e-10 ٣٤٥ १२३ ½",
    "Dates 2024-01-31T23:59:59Z, phone +1 (555) 010-9999, IP 192.168.0.1, v1.2.3-beta+42.",
    "def fibonacci(n: int) -> int:\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)",
    "for (int i = 0; i < 10; ++i) { printf(\"%d\\n\", i); } // C++ && || != == <<= >>= ->",
    "<html><body class=\"x\">&amp; &lt;tag&gt;</body></html> https://example.com/a?b=c&d=e#f",
    "Spaces:  two   three    four     five      six\ttab\t\ttabs \t mixed",
    "",
    "",
    "   leading spaces and trailing spaces   ",
    "\t\n\n\n   \n",
    "Special-looking: <|endoftext|> <|im_start|>user\nhi<|im_end|> <s> </s> <unk> <pad> [CLS] [SEP] <|endoftext|>x",
    "Near misses: <|endoftext| <|im_start <||> <|endoftext|><|endoftext|> <|END OF TEXT|> < s > <s>hello</s>",
    "Punctuation!!! ??? ... --- ___ *** ~~~ ``` '''' \"\"\" «quoted» „low“ ‘single’ — – • · ¿¡",
    "Zero width:\u200b\u200c\u200d\u2060 NBSP:\u00a0\u00a0 thin:\u2009 ideographic:\u3000 line sep:\u2028 para:\u2029 nel:\u0085.",
    "Control: \u0001\u0002\u0007\u001b[0m \u007f \r\n windows line\r\nend",
    "Math: ∀x ∈ ℝ, ∃y: x² + y² ≤ 1 ⇒ ∑ᵢ aᵢ = ∫₀¹ f(x) dx ≈ π/4 ∞ ≠ ∅",
    "Long word: pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism " + "a" * 120,
    "Repeats: " + "ha" * 40 + " " + "!" * 30 + " " + "\u00e9" * 25 + " " + "\U0001f600" * 12,
    "Mixed scripts: abcАБВαβγ日本abc123abc١٢٣ snake_case camelCase PascalCase SCREAMING_CASE kebab-case",
    "Private use: \ue000\uf8ff \U000f0000 and noncharacters \ufdd0 \ufffe; replacement char \ufffd; max \U0010fffd",
    "Final line without newline? no — the file ends with a newline.",
]

INVALID_SPLICES = [
    b"\x80", b"\xbf\xbf", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xc0\xaf", b"\xed\xa0\x80",
    b"\xff", b"\xfe\xfe", b"\xf8\x88\x80\x80\x80", b"\xf4\x90\x80\x80",
]


def main() -> None:
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    text = "\n".join(LINES) + "\n"
    with open(os.path.join(out, "adversarial.txt"), "w", encoding="utf-8", newline="") as f:
        f.write(text)
    raw = bytearray()
    for i, line in enumerate(LINES):
        raw += line.encode("utf-8")
        raw += INVALID_SPLICES[i % len(INVALID_SPLICES)]
        raw += b"\n"
    with open(os.path.join(out, "adversarial-invalid-utf8.bin"), "wb") as f:
        f.write(bytes(raw))
    print(f"{out}/adversarial.txt: {len(text)} characters; adversarial-invalid-utf8.bin: {len(raw)} bytes")


if __name__ == "__main__":
    main()
