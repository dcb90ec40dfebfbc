"""Writes PyTorch weight files for tests/parity/weights_test.cpp, plus the same tensors via tensor_io so the
C++ reader can be compared exactly. Run with the reference python (python3-torchvision):

  gen_weights.py OUT_DIR                       -> every fixture below
  gen_weights.py OUT_DIR --check FILE REF_DIR  -> torch.load(FILE) equals REF_DIR exactly (exit 0, else 1);
                                                  used to check files written by vigil's save_state_dict

Fixtures (OUT_DIR/...):
  resnet18.pth        torchvision resnet18 state_dict (OrderedDict with _metadata, the published format)
  checkpoint.pth      {"model": sd, "epoch": 3, "optimizer": SGD(momentum) state after one step}
  resnet18_script.pt  torch.jit.script(resnet18).save
  views.pth           non-contiguous, offset and shared-storage tensors in several dtypes
  views_meta.json     dtype / shape / stride / storage offset / shared-with of every views.pth tensor
  detector.pth        fasterrcnn_mobilenet_v3_large_320_fpn(num_classes=2) state_dict
  legacy.pth          views.pth's dict in the legacy (pre-1.6) format
  legacy_resnet.pth   a small model's state_dict in the legacy format
  <name>_ref/         tensor_io reference tensors for each of the above
"""
import collections
import json
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tensor_io import save_tensors  # noqa: E402

_DTYPE_NAMES = {torch.float32: "float32", torch.float64: "float64", torch.int64: "int64", torch.int32: "int32",
                torch.uint8: "uint8", torch.bool: "bool", torch.float16: "float16", torch.int8: "int8",
                torch.int16: "int16", torch.bfloat16: "bfloat16"}


def reference(tensors):
    """tensor_io has no float16: store those as float32 (exact) and let views_meta.json carry the dtype."""
    out = collections.OrderedDict()
    for k, t in tensors.items():
        t = t.detach()
        out[k] = t.float() if t.dtype in (torch.float16, torch.bfloat16) else t
    return out


def resnet_state():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    return model


def views_dict():
    torch.manual_seed(1)
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    shared = torch.randn(10, dtype=torch.float64)
    d = collections.OrderedDict()
    d["offset_slice"] = base.view(-1)[5:]                # storage offset 5
    d["transposed"] = base.t()                           # non-contiguous strides (1, 6)
    d["column"] = base[:, 2]                             # stride 6, offset 2
    d["shared_a"] = shared                               # two keys, one storage
    d["shared_b"] = shared[3:8]
    d["expanded"] = torch.tensor([1, 2, 3], dtype=torch.int64).reshape(3, 1).expand(3, 4)  # stride 0
    d["uint8"] = torch.randint(0, 255, (5, 3), dtype=torch.uint8)
    d["bool"] = torch.tensor([True, False, True, True])
    d["half"] = torch.randn(3, 4).half()
    d["int64_scalar"] = torch.tensor(7, dtype=torch.int64)
    d["empty"] = torch.zeros(0, 3)
    return d


def views_meta(d):
    meta = {}
    storages = {}
    for k, t in d.items():
        ptr = t.storage().data_ptr()
        meta[k] = {"dtype": _DTYPE_NAMES[t.dtype], "shape": list(t.shape), "stride": list(t.stride()),
                   "offset": t.storage_offset(), "shares_with": storages.get(ptr, "")}
        storages.setdefault(ptr, k)
    return meta


def write_all(out):
    os.makedirs(out, exist_ok=True)
    model = resnet_state()
    sd = model.state_dict()
    assert hasattr(sd, "_metadata")
    torch.save(sd, os.path.join(out, "resnet18.pth"))
    save_tensors(os.path.join(out, "resnet18_ref"), reference(sd))

    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    model.train()
    loss = model(torch.randn(2, 3, 64, 64)).square().mean()
    loss.backward()
    opt.step()
    sd_after = model.state_dict()
    torch.save({"model": sd_after, "epoch": 3, "optimizer": opt.state_dict(), "lr": 0.01, "tags": ["a", 1, None]},
               os.path.join(out, "checkpoint.pth"))
    save_tensors(os.path.join(out, "checkpoint_ref"), reference(sd_after))

    model.eval()
    torch.jit.script(model).save(os.path.join(out, "resnet18_script.pt"))
    save_tensors(os.path.join(out, "resnet18_script_ref"), reference(model.state_dict()))

    views = views_dict()
    torch.save(views, os.path.join(out, "views.pth"))
    save_tensors(os.path.join(out, "views_ref"), reference(views))
    with open(os.path.join(out, "views_meta.json"), "w") as f:
        json.dump(views_meta(views), f, indent=1)
    torch.save(views, os.path.join(out, "legacy.pth"), _use_new_zipfile_serialization=False)

    torch.manual_seed(2)
    small = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(4, 2))
    torch.save(small.state_dict(), os.path.join(out, "legacy_resnet.pth"), _use_new_zipfile_serialization=False)
    save_tensors(os.path.join(out, "legacy_resnet_ref"), reference(small.state_dict()))

    torch.manual_seed(3)
    det = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, num_classes=2)
    torch.save(det.state_dict(), os.path.join(out, "detector.pth"))
    save_tensors(os.path.join(out, "detector_ref"), reference(det.state_dict()))


def check(file, ref_dir):
    """torch.load(file) must be an OrderedDict/dict with exactly REF_DIR's keys (in order), dtypes and values."""
    loaded = torch.load(file)
    with open(os.path.join(ref_dir, "index.json")) as f:
        index = json.load(f)
    if list(loaded.keys()) != list(index.keys()):
        print("key mismatch:", list(loaded.keys())[:5], "vs", list(index.keys())[:5])
        return 1
    bad = 0
    for name, meta in index.items():
        t = loaded[name]
        want_dtype = {v: k for k, v in _DTYPE_NAMES.items()}[meta["dtype"]]
        raw = open(os.path.join(ref_dir, meta["file"]), "rb").read()
        ref = torch.frombuffer(bytearray(raw), dtype=want_dtype) if raw else torch.empty(0, dtype=want_dtype)
        ref = ref.reshape(meta["shape"])
        if t.dtype != want_dtype or list(t.shape) != meta["shape"] or not torch.equal(t, ref):
            print(f"{name}: got {t.dtype} {list(t.shape)}, expected {want_dtype} {meta['shape']}")
            bad += 1
    print(f"{len(index)} tensors checked, {bad} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[2] == "--check":
        sys.exit(check(sys.argv[3], sys.argv[4]))
    write_all(sys.argv[1])
