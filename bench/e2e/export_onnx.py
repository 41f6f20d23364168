"""Exports the torch peers to ONNX for ONNX Runtime (torch.onnx.export, opset 14, dynamic batch/sequence axes).

  bert.onnx            input_ids, token_type_ids, attention_mask [B, T] int64 -> last_hidden_state, pooler_output
  gpt2_with_past.onnx  input_ids [B, T] int64, past_key_i / past_value_i [B, 12, P, 64] (P may be 0)
                       -> logits [B, T, V], present_key_i / present_value_i [B, 12, P + T, 64]
The GPT-2 graph serves both the prefill (empty past) and each decoding step (past = the previous presents).
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models as tm  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True)
    ap.add_argument("--opset", type=int, default=14)
    a = ap.parse_args()
    out = os.path.join(a.cache, "onnx")
    os.makedirs(out, exist_ok=True)
    with torch.no_grad():
        path = os.path.join(out, "bert.onnx")
        if not os.path.exists(path):
            m = tm.load_model(os.path.join(a.cache, "bert-base-chinese"))
            ids = torch.randint(106, 21128, (2, 7))
            axes = {0: "batch", 1: "sequence"}
            torch.onnx.export(m, (ids, torch.zeros_like(ids), torch.ones_like(ids)), path + ".tmp",
                              input_names=["input_ids", "token_type_ids", "attention_mask"],
                              output_names=["last_hidden_state", "pooler_output"],
                              dynamic_axes={"input_ids": axes, "token_type_ids": axes, "attention_mask": axes,
                                            "last_hidden_state": axes, "pooler_output": {0: "batch"}},
                              opset_version=a.opset, do_constant_folding=True)
            os.replace(path + ".tmp", path)
            print(f"wrote {path}", file=sys.stderr)
        path = os.path.join(out, "gpt2_with_past.onnx")
        if not os.path.exists(path):
            m = tm.load_model(os.path.join(a.cache, "gpt2"))
            c = m.config
            layers, heads, d = c["n_layer"], c["n_head"], c["n_embd"] // c["n_head"]
            ids = torch.randint(0, 50256, (2, 3))
            past = []
            for _ in range(layers):
                past += [torch.randn(2, heads, 4, d) * 0.1, torch.randn(2, heads, 4, d) * 0.1]
            in_names, out_names = ["input_ids"], ["logits"]
            axes = {"input_ids": {0: "batch", 1: "sequence"}, "logits": {0: "batch", 1: "sequence"}}
            for i in range(layers):
                for kind in ("key", "value"):
                    in_names.append(f"past_{kind}_{i}")
                    out_names.append(f"present_{kind}_{i}")
                    axes[f"past_{kind}_{i}"] = {0: "batch", 2: "past_sequence"}
                    axes[f"present_{kind}_{i}"] = {0: "batch", 2: "total_sequence"}
            torch.onnx.export(tm.Gpt2WithPastForOnnx(m), (ids, *past), path + ".tmp",
                              input_names=in_names, output_names=out_names, dynamic_axes=axes,
                              opset_version=a.opset, do_constant_folding=True)
            os.replace(path + ".tmp", path)
            print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
