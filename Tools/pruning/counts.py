"""Upstream LLM-Pruner's unit counts and the lowest-first selection (llm-pruner.md §1.8), shared by
the PyTorch references (Tools/pruning/reference.py, Tools/recovery/reference.py)."""


def to_remove(initial, current, ratio):
    return max(0, current - int(initial * (1 - ratio)))


def hidden_to_remove(initial, current, ratio, multiple):
    """--strategy channel: upstream's count, at least one channel kept, with the kept width rounded
    UP to a multiple of num_attention_heads (transformers' LlamaConfig refuses any other hidden_size)."""
    n = min(to_remove(initial, current, ratio), current - 1)
    kept = min(-(-(current - n) // multiple) * multiple, current)
    return current - kept


def query_per_group(nh, nkv, ratio, d=1):
    """GQA query policy: upstream's count on the q_proj root (n = W0 - int(W0*(1-r)) channels,
    floor(n/d) heads), spread equally over the KV groups (floor)."""
    w0 = nh * d
    return ((w0 - int(w0 * (1 - ratio))) // d) // nkv


def lowest(scores, candidates, count):
    """candidates without the `count` lowest-scoring ones (ties: lower index goes first)."""
    order = sorted(candidates, key=lambda i: (scores[i], i))
    gone = set(order[:max(0, min(count, len(candidates)))])
    return [i for i in candidates if i not in gone]
