"""PyTorch reference for Shears' distillation loss (Tests/EngineTests/LoRATests.swift, LoRADistillationTests).

    python distill_reference.py STUDENT_DIR TEACHER_DIR OUT.safetensors

The student (float64, RMSNorm and losses in float64 as Tools/engine/make_goldens.py does) carries PEFT
LoRA adapters on the seven projections with seeded random A and B (B non-zero), no dropout. One
micro-batch of right-padded sequences of unequal length with masked prompts runs through student
and teacher (forward only). Per counted token (label not -100 after the shift), with temperature T
and CE weight w:

    loss = (1 - w) · T² · KL(softmax(u/T) ‖ softmax(z/T)) + w · CE(z, target)

(KL from torch.nn.functional.kl_div(log_softmax(z/T), log_softmax(u/T), log_target=True), summed over
the vocabulary), averaged over the counted tokens. OUT holds `init.<layer>.<module>.A/B`, the batch
(`tokens`, `trained`, `lengths`), T and w (metadata), the loss and the gradient of every A and B
(`grad.<layer>.<module>.A/B`).
"""
import os, sys
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "engine"))
from make_goldens import _patch_norms  # noqa: E402

MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
T, W, RANK, ALPHA = 2.0, 0.3, 4, 8.0


def main():
    student_dir, teacher_dir, out_path = sys.argv[1:4]
    torch.set_num_threads(2)
    _patch_norms()
    from transformers import AutoConfig, AutoModelForCausalLM
    from peft import LoraConfig, get_peft_model
    load = lambda d: AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float64, attn_implementation="eager")
    student = get_peft_model(load(student_dir), LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=MODULES)).double()
    teacher = load(teacher_dir).eval()
    V = AutoConfig.from_pretrained(student_dir).vocab_size
    gen = torch.Generator().manual_seed(4321)
    out, adapters = {}, []
    for name, mod in student.named_modules():
        if hasattr(mod, "lora_A") and "default" in mod.lora_A:
            layer, module = int(name.split(".layers.")[1].split(".")[0]), name.split(".")[-1]
            a, b = mod.lora_A["default"].weight, mod.lora_B["default"].weight
            with torch.no_grad():
                a.copy_(((torch.rand(a.shape, generator=gen, dtype=torch.float64) * 2 - 1) / a.shape[1] ** 0.5).float().double())
                b.copy_(((torch.rand(b.shape, generator=gen, dtype=torch.float64) * 2 - 1) * 0.05).float().double())
            out[f"init.{layer}.{module}.A"] = a.detach().float().clone()
            out[f"init.{layer}.{module}.B"] = b.detach().float().clone()
            adapters.append((layer, module, a, b))
    Tn, lengths = 12, [12, 8, 10]
    tokens = torch.zeros(len(lengths), Tn, dtype=torch.int64)
    trained = torch.zeros(len(lengths), Tn, dtype=torch.int64)
    mask = torch.zeros(len(lengths), Tn, dtype=torch.int64)
    for r, n in enumerate(lengths):
        tokens[r, :n] = torch.randint(0, V, (n,), generator=gen)
        trained[r, 2 * r:n] = 1
        mask[r, :n] = 1
    labels = torch.where(trained.bool(), tokens, torch.full_like(tokens, -100))[:, 1:].reshape(-1)
    z = student(input_ids=tokens, attention_mask=mask).logits[:, :-1].reshape(-1, V)
    with torch.no_grad():
        u = teacher(input_ids=tokens, attention_mask=mask).logits[:, :-1].reshape(-1, V)
    counted = labels != -100
    kl = F.kl_div(F.log_softmax(z / T, -1), F.log_softmax(u / T, -1), log_target=True, reduction="none").sum(-1)
    ce = F.cross_entropy(z, labels.clamp(min=0), reduction="none")
    loss = (((1 - W) * T * T * kl + W * ce) * counted).sum() / counted.sum()
    loss.backward()
    for layer, module, a, b in adapters:
        out[f"grad.{layer}.{module}.A"] = a.grad.float()
        out[f"grad.{layer}.{module}.B"] = b.grad.float()
    out.update(tokens=tokens, trained=trained, lengths=torch.tensor(lengths), loss=torch.tensor([loss.item()], dtype=torch.float64))
    save_file({k: v.contiguous() for k, v in out.items()}, out_path,
              metadata={"rank": str(RANK), "alpha": str(ALPHA), "temperature": str(T), "ce_weight": str(W)})
    print(f"{out_path}: loss {loss.item():.6f}, {len(adapters)} adapters")


if __name__ == "__main__":
    main()
