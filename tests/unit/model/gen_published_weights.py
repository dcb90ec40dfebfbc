"""Weight files for tests/unit/model/published_weights_test.cpp and tests/integration/weights_cli_test.cpp,
named as torchvision names its published files: ARCH-<first 8 hex digits of the file's SHA-256>.pth.

Usage: gen_published_weights.py OUT_DIR ARCH [ARCH ...]

Each ARCH is built by torchvision 0.14 with fresh seeded weights (weights=None) and saved with
torch.save(model.state_dict()): the OrderedDict-with-_metadata form torchvision's published files have.
Prints one file name per line, in ARCH order. The files are made at test time (not committed): a
mobilenet_v3_small is 10 MB.
"""
import hashlib
import os
import sys

import torch
import torchvision


def main(out_dir, archs):
    os.makedirs(out_dir, exist_ok=True)
    for arch in archs:
        torch.manual_seed(0)
        model = getattr(torchvision.models, arch)(weights=None)
        tmp = os.path.join(out_dir, arch + ".tmp")
        torch.save(model.state_dict(), tmp)
        with open(tmp, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        name = "{}-{}.pth".format(arch, digest[:8])
        os.replace(tmp, os.path.join(out_dir, name))
        print(name)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
