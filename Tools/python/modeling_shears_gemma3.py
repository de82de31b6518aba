# Remote-code modeling file for Gemma3 checkpoints pruned by `shears prune` with per-layer widths.
#
# config.json carries `num_attention_heads_per_layer`, `num_key_value_heads_per_layer` and
# `intermediate_size_per_layer` (one entry per decoder layer) and an explicit `head_dim`; the
# scalar keys keep the source model's values. Load with
#   AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)
# Each decoder layer is a stock transformers Gemma3DecoderLayer (four (1 + w) norms over hidden_size,
# which pruning keeps, and per-head q/k norms over head_dim) built from a copy of the
# config with that layer's sizes, so the forward pass is transformers' own.
import copy

from transformers import Gemma3TextConfig, Gemma3ForCausalLM
from transformers.models.gemma3.modeling_gemma3 import Gemma3DecoderLayer


class ShearsGemma3Config(Gemma3TextConfig):
    def __init__(self, num_attention_heads_per_layer=None, num_key_value_heads_per_layer=None,
                 intermediate_size_per_layer=None, **kwargs):
        super().__init__(**kwargs)
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

    def layer_config(self, i):
        c = copy.deepcopy(self)
        c.num_attention_heads = self.num_attention_heads_per_layer[i]
        c.num_key_value_heads = self.num_key_value_heads_per_layer[i]
        c.intermediate_size = self.intermediate_size_per_layer[i]
        return c


class ShearsGemma3ForCausalLM(Gemma3ForCausalLM):
    config_class = ShearsGemma3Config

    def __init__(self, config):
        super().__init__(config)
        for i in range(config.num_hidden_layers):
            self.model.layers[i] = Gemma3DecoderLayer(config.layer_config(i), i)
        self.post_init()
