"""PyTorch cold-start peer of `sharpformer embed`: import torch, load the safetensors checkpoint, run one
sentence (fixed ids: [CLS] 今 天 天 气 很 好 。 [SEP]), print the [CLS] vector's first values."""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models as tm  # noqa: E402

torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
model = tm.load_model(sys.argv[1])
ids = torch.tensor([[101, 791, 1921, 1921, 3698, 2523, 1962, 511, 102]])
with torch.no_grad():
    lhs, _ = model(ids, torch.zeros_like(ids), torch.ones_like(ids))
print(" ".join(f"{x:.6f}" for x in lhs[0, 0, :8].tolist()), flush=True)
