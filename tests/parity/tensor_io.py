"""Writes named tensors for the C++ parity tests: DIR/index.json (name -> dtype, shape, file) + raw
little-endian DIR/<n>.bin. Used by the gen_*.py generators; read by tests/parity/parity_util.h."""
import json
import os

import torch

_DTYPES = {torch.float32: "float32", torch.float64: "float64", torch.int64: "int64", torch.int32: "int32",
           torch.uint8: "uint8", torch.bool: "bool"}


def save_tensors(directory, tensors):
    os.makedirs(directory, exist_ok=True)
    index = {}
    for i, (name, t) in enumerate(tensors.items()):
        t = t.detach().contiguous().cpu()
        fname = f"{i}.bin"
        with open(os.path.join(directory, fname), "wb") as f:
            f.write(t.numpy().tobytes() if t.numel() else b"")
        index[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "file": fname}
    with open(os.path.join(directory, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
