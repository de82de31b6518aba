"""Rewrites a `llama` GGUF as `deci` without touching its tensors: the same weights and widths,
with llama.cpp's per-layer (deci) loader and graph instead of the stock one. `llama.*` keys become
`deci.*`; head_count, head_count_kv and feed_forward_length become arrays of block_count values.
Used to tell whether a deci file's speed comes from its uneven widths or from the deci code path
(docs/benchmarks.md).

    python Tools/llama-cpp/as_deci.py IN.gguf OUT.gguf
"""
import sys

import gguf

if len(sys.argv) != 3:
    sys.exit("usage: python Tools/llama-cpp/as_deci.py IN.gguf OUT.gguf")
src, dst = sys.argv[1], sys.argv[2]
r = gguf.GGUFReader(src)
arch = r.get_field("general.architecture").contents()
if arch != "llama":
    sys.exit(f"as_deci: {src} is '{arch}', not llama")
blocks = int(r.get_field("llama.block_count").contents())
w = gguf.GGUFWriter(dst, "deci")
per_layer = {"attention.head_count", "attention.head_count_kv", "feed_forward_length"}
for field in r.fields.values():
    if field.name == "general.architecture" or field.name.startswith("GGUF."):
        continue
    name = field.name
    t = field.types[0]
    sub = field.types[-1] if t == gguf.GGUFValueType.ARRAY else None
    value = field.contents()
    if name.startswith("llama."):
        key = name[len("llama."):]
        name = "deci." + key
        if key in per_layer and t != gguf.GGUFValueType.ARRAY:
            value, sub, t = [int(value)] * blocks, gguf.GGUFValueType.INT32, gguf.GGUFValueType.ARRAY
    w.add_key_value(name, value, t, sub_type=sub)
for tensor in r.tensors:
    w.add_tensor_info(tensor.name, tensor.data.shape, tensor.data.dtype, tensor.data.nbytes, tensor.tensor_type)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_ti_data_to_file()
for tensor in r.tensors:
    w.write_tensor_data(tensor.data, tensor_endianess=r.endianess)
w.close()
print(f"as_deci: {dst} ({blocks} blocks)", file=sys.stderr)
