# Remote-code modeling file for Phi-3 checkpoints pruned by `shears prune` with per-layer widths.
#
# config.json carries `num_attention_heads_per_layer`, `num_key_value_heads_per_layer` and
# `intermediate_size_per_layer` (one entry per decoder layer) and an explicit `head_dim`; the
# scalar keys keep the source model's values. Load with
#   AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)
# Each decoder layer is a stock transformers Phi3DecoderLayer (fused qkv_proj and gate_up_proj of
# that layer's widths) built from a copy of the config with that layer's sizes, so the forward
# pass is transformers' own. Phi3Config checks longrope's factor lists against
# hidden_size // num_attention_heads; a pruned model keeps head_dim instead, so the check here
# uses head_dim.
import copy

from transformers import Phi3Config, Phi3ForCausalLM
from transformers.models.phi3.modeling_phi3 import Phi3DecoderLayer


class ShearsPhi3Config(Phi3Config):
    def __init__(self, num_attention_heads_per_layer=None, num_key_value_heads_per_layer=None,
                 intermediate_size_per_layer=None, **kwargs):
        # Phi3Config's own check would compare longrope's factors with hidden_size //
        # num_attention_heads: the rotary settings are set after it, and checked against head_dim.
        rope = kwargs.pop("rope_parameters", None) or kwargs.pop("rope_scaling", None)
        super().__init__(**kwargs)
        if rope is not None:
            self.rope_parameters = dict(rope)
            self.rope_parameters.setdefault("rope_theta", kwargs.get("rope_theta", 10000.0))
            self.rope_parameters.setdefault("partial_rotary_factor", kwargs.get("partial_rotary_factor", 1.0))
            self.check_rope()
        n = self.num_hidden_layers
        self.num_attention_heads_per_layer = list(num_attention_heads_per_layer or [self.num_attention_heads] * n)
        self.num_key_value_heads_per_layer = list(num_key_value_heads_per_layer or [self.num_key_value_heads] * n)
        self.intermediate_size_per_layer = list(intermediate_size_per_layer or [self.intermediate_size] * n)
        for name in ("num_attention_heads_per_layer", "num_key_value_heads_per_layer", "intermediate_size_per_layer"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries for {n} layers")
        for i, (q, kv) in enumerate(zip(self.num_attention_heads_per_layer, self.num_key_value_heads_per_layer)):
            if kv <= 0 or q % kv != 0:
                raise ValueError(f"layer {i}: {q} query heads are not a multiple of {kv} KV heads")

    def check_rope(self):
        rope = self.rope_parameters if isinstance(self.rope_parameters, dict) else {}
        head_dim = getattr(self, "head_dim", None) or self.hidden_size // self.num_attention_heads
        pairs = int(head_dim * rope.get("partial_rotary_factor", 1.0)) // 2
        for key in ("short_factor", "long_factor"):
            if rope.get(key) is not None and len(rope[key]) != pairs:
                raise ValueError(f"rope_parameters {key} has {len(rope[key])} entries; head_dim {head_dim} turns {pairs} pairs")

    def layer_config(self, i):
        c = copy.deepcopy(self)
        c.num_attention_heads = self.num_attention_heads_per_layer[i]
        c.num_key_value_heads = self.num_key_value_heads_per_layer[i]
        c.intermediate_size = self.intermediate_size_per_layer[i]
        return c


class ShearsPhi3ForCausalLM(Phi3ForCausalLM):
    config_class = ShearsPhi3Config

    def __init__(self, config):
        super().__init__(config)
        for i in range(config.num_hidden_layers):
            self.model.layers[i] = Phi3DecoderLayer(config.layer_config(i), i)
        self.post_init()
