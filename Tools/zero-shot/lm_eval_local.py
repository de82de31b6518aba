"""lm-eval 0.4.13 on local JSONL rows: task configs that `include` lm-eval's own YAML and override
only the dataset source (a local JSON file as the validation split, no test split), and a runner
that returns every item's requests and per-choice log-likelihoods.

Used by Tools/check-zero-shot, Tools/bench-zero-shot and Tools/make-zero-shot-goldens."""
import json, os, tempfile

import lm_eval
from lm_eval.tasks import TaskManager

TASKS = {
    "boolq": "super_glue/boolq/default.yaml",
    "piqa": "piqa/piqa.yaml",
    "hellaswag": "hellaswag/hellaswag.yaml",
    "winogrande": "winogrande/default.yaml",
    "arc_easy": "arc/arc_easy.yaml",
    "arc_challenge": "arc/arc_challenge.yaml",
    "openbookqa": "openbookqa/openbookqa.yaml",
}


def tokenizer(folder):
    """The folder's tokenizer.json with BOS and EOS named from config.json's ids (lm-eval needs a
    prefix token); special tokens are added as the tokenizer's post-processor says."""
    from transformers import PreTrainedTokenizerFast
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(folder, "tokenizer.json"))
    cfg = json.load(open(os.path.join(folder, "config.json")))
    kw = {}
    if cfg.get("bos_token_id") is not None:
        kw["bos_token"] = tok.convert_ids_to_tokens(cfg["bos_token_id"])
    if cfg.get("eos_token_id") is not None:
        eos = cfg["eos_token_id"]
        kw["eos_token"] = tok.convert_ids_to_tokens(eos[0] if isinstance(eos, list) else eos)
    return PreTrainedTokenizerFast(tokenizer_file=os.path.join(folder, "tokenizer.json"), **kw)


def write_configs(data_dir, out_dir):
    """One `<task>_local.yaml` per task in out_dir; returns {task: local task name}."""
    tasks_root = os.path.join(os.path.dirname(lm_eval.__file__), "tasks")
    names = {}
    for task, rel in TASKS.items():
        src = os.path.join(data_dir, task + ".jsonl")
        if task == "boolq":
            # lm-eval's boolq reads super_glue's `label` (= int(answer) of google/boolq's layout):
            # the same rows with that column added.
            derived = os.path.join(out_dir, "boolq-with-label.jsonl")
            with open(src, encoding="utf-8") as f, open(derived, "w", encoding="utf-8") as g:
                for line in f:
                    if line.strip():
                        row = json.loads(line)
                        row["label"] = int(row["answer"])
                        g.write(json.dumps(row, ensure_ascii=False) + "\n")
            src = derived
        name = task + "_local"
        with open(os.path.join(out_dir, name + ".yaml"), "w") as f:
            f.write(f"include: {os.path.join(tasks_root, rel)}\n")
            f.write(f"task: {name}\n")
            f.write("tag: []\n")
            f.write("dataset_path: json\n")
            f.write("dataset_name: null\n")
            f.write(f"dataset_kwargs:\n  data_files:\n    validation: {src}\n")
            f.write("training_split: null\n")
            f.write("test_split: null\n")
            f.write("validation_split: validation\n")
        names[task] = name
    return names


def run(lm, data_dir, tasks, limit=None):
    """Runs lm-eval's evaluator; returns ({task: results dict}, {task: [sample, ...]})."""
    with tempfile.TemporaryDirectory() as tmp:
        names = write_configs(data_dir, tmp)
        tm = TaskManager(include_path=tmp, include_defaults=True)
        out = lm_eval.simple_evaluate(model=lm, tasks=[names[t] for t in tasks], task_manager=tm,
                                      limit=limit, num_fewshot=0, log_samples=True, bootstrap_iters=1000)
    results, samples = {}, {}
    for t in tasks:
        results[t] = out["results"][names[t]]
        samples[t] = sorted(out["samples"][names[t]], key=lambda s: s["doc_id"])
    return results, samples
