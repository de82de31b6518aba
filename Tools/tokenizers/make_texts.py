"""Extracts Jane Austen's six novels from the Debian package r-cran-janeaustenr without R.

Usage: make_texts.py EXTRACTED_DEB_ROOT OUT_DIR

The package keeps the novels in an R lazy-load database (data/Rdata.rdx + Rdata.rdb): the .rdx is a
gzip-compressed R serialization of an index (variable -> (offset, length) into the .rdb), and each
object in the .rdb is a 4-byte big-endian length followed by a zlib stream. Each novel is a character
vector of lines; we write them joined with "\n" plus a final newline as UTF-8.

Five novels go to OUT_DIR/austen-calibration/ (calibration and tokenizer training); Persuasion is held
out in OUT_DIR/austen-evaluation/ (evaluation and tokenizer goldens).
"""
import gzip
import os
import sys
import zlib

import rdata

HELD_OUT = "persuasion"
NOVELS = ["emma", "mansfieldpark", "northangerabbey", "persuasion", "prideprejudice", "sensesensibility"]


def convert(raw: bytes):
    return rdata.conversion.convert(rdata.parser.parse_data(raw))


def main() -> None:
    root, out = sys.argv[1], sys.argv[2]
    data_dir = None
    for dirpath, _, files in os.walk(root):
        if dirpath.endswith(os.path.join("janeaustenr", "data")) and "Rdata.rdx" in files:
            data_dir = dirpath
    if data_dir is None:
        sys.exit(f"error: no janeaustenr/data/Rdata.rdx under {root}")
    with open(os.path.join(data_dir, "Rdata.rdx"), "rb") as f:
        index = convert(gzip.decompress(f.read()))
    with open(os.path.join(data_dir, "Rdata.rdb"), "rb") as f:
        rdb = f.read()
    variables = index["variables"]
    for name in NOVELS:
        offset, length = (int(x) for x in variables[name])
        lines = convert(zlib.decompress(rdb[offset + 4 : offset + length]))
        text = "\n".join(str(line) for line in lines) + "\n"
        sub = "austen-evaluation" if name == HELD_OUT else "austen-calibration"
        os.makedirs(os.path.join(out, sub), exist_ok=True)
        path = os.path.join(out, sub, name + ".txt")
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        print(f"{path}: {len(lines)} lines, {len(text)} characters")


if __name__ == "__main__":
    main()
