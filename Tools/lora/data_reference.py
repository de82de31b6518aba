#!/usr/bin/env python3
"""Golden token ids and labels for Shears' training data (Sources/ShearsPipeline/TrainingData.swift).

Reproduces upstream LLM-Pruner's post_training.py data path with the Hugging Face tokenizer of the
bundled model (Fixtures/models/austen-llama/tokenizer.json, <|endoftext|> as EOS):

- the Alpaca-LoRA prompt template of LLMPruner/utils/prompter.py (input / no-input variants, output
  appended when non-empty);
- tokenize(prompt, add_eos_token): tokenizer(prompt, truncation=True, max_length=cutoff_len,
  padding=False), EOS appended when the last id is not EOS, the length is below cutoff_len and
  add_eos_token;
- generate_and_tokenize_prompt with train_on_inputs=False, add_eos_token=False (upstream's
  defaults): labels = [-100] * len(tokenize(user_prompt, add_eos_token=False)) + labels[that:];
- JSONL `text` records: tokenize(text) with labels = input_ids (every token trained).

Records upstream would crash on (empty text: input_ids[-1] of an empty list) or that have no label
other than -100 are reported as skipped, as Shears skips them.

Also the consecutive windows of a plain text file (Shears' --data FILE.txt): the whole file
tokenized (special tokens added, as `--calibration`), cut into non-overlapping windows.

Usage: data_reference.py REPO OUT.json
"""
import hashlib
import json
import sys

from transformers import PreTrainedTokenizerFast

ALPACA_INPUT = ("Below is an instruction that describes a task, paired with an input that provides further "
                "context. Write a response that appropriately completes the request.\n\n"
                "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n")
ALPACA_NO_INPUT = ("Below is an instruction that describes a task. Write a response that appropriately "
                   "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n")


def generate_prompt(instruction, input=None, label=None):
    # LLMPruner/utils/prompter.py Prompter.generate_prompt with the alpaca template.
    if input:
        res = ALPACA_INPUT.format(instruction=instruction, input=input)
    else:
        res = ALPACA_NO_INPUT.format(instruction=instruction)
    if label:
        res = f"{res}{label}"
    return res


def main():
    repo, out_path = sys.argv[1], sys.argv[2]
    tok = PreTrainedTokenizerFast(tokenizer_file=f"{repo}/Fixtures/models/austen-llama/tokenizer.json",
                                  eos_token="<|endoftext|>")

    def tokenize(prompt, cutoff, add_eos_token=True):
        result = tok(prompt, truncation=True, max_length=cutoff, padding=False, return_tensors=None)
        ids = list(result["input_ids"])
        if ids and ids[-1] != tok.eos_token_id and len(ids) < cutoff and add_eos_token:
            ids.append(tok.eos_token_id)
        return ids

    def alpaca_example(record, cutoff):
        full = tokenize(generate_prompt(record["instruction"], record.get("input"), record.get("output")), cutoff)
        user = tokenize(generate_prompt(record["instruction"], record.get("input")), cutoff, add_eos_token=False)
        labels = [-100] * len(user) + full[len(user):]
        return full, labels[:len(full)] if len(labels) > len(full) else labels

    def text_example(record, cutoff):
        ids = tokenize(record["text"], cutoff)
        return ids, list(ids)

    def records(path):
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def sha(path):
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    golden = {"tokenizer": "Fixtures/models/austen-llama/tokenizer.json", "eos": tok.eos_token_id, "cases": []}
    for cutoff in (64, 128):
        for name, make in (("alpaca.jsonl", alpaca_example), ("text.jsonl", text_example)):
            path = f"{repo}/Fixtures/lora/data/{name}"
            examples, skipped = [], 0
            for r in records(path):
                if name == "text.jsonl" and not tok(r["text"])["input_ids"]:
                    skipped += 1  # upstream: IndexError on input_ids[-1]
                    continue
                ids, labels = make(r, cutoff)
                if len(ids) < 2 or all(x == -100 for x in labels[1:]):
                    skipped += 1
                    continue
                examples.append({"input_ids": ids, "labels": labels})
            golden["cases"].append({"file": name, "sha256": sha(path), "seq_len": cutoff, "skipped": skipped,
                                    "examples": examples})

    text = f"{repo}/Fixtures/text/austen-evaluation/persuasion-head.txt"
    with open(text, encoding="utf-8") as f:
        ids = tok(f.read())["input_ids"]
    seq = 128
    windows = [ids[i:i + seq] for i in range(0, len(ids) - seq + 1, seq)]
    golden["text_windows"] = {"file": "persuasion-head.txt", "sha256": sha(text), "seq_len": seq, "tokens": len(ids),
                              "count": len(windows), "first": windows[0], "last": windows[-1]}
    with open(out_path, "w") as f:
        json.dump(golden, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
