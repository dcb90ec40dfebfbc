#!/usr/bin/python3
"""Write the Python seed server's weights for one architecture, and its reference output on one image.

    PYTHONPATH=../shared/bench/baseline /usr/bin/python3 bench/seed_weights.py ARCH OUT.pth [IMAGE REF.json]

The model is built by the seed server's own `seed_server.build_model(arch)` (imported from the baseline folder
on PYTHONPATH; seeded random weights, MODEL_SEED, default 0), and its state_dict is torch.save'd to OUT.pth, so
that the seed server (MODEL_WEIGHTS=OUT.pth) and `vigil serve --model OUT.pth --arch ARCH --num-classes 2` serve
identical weights. With IMAGE, the model's raw output on it (as seed_server.detect/classify compute it) goes to
REF.json: detections count, the top scores and boxes, how many exceed the seed route's 0.7 threshold.
Also: `... seed_weights.py --image-only OUT.jpg` writes a 640x480 test JPEG with PIL (when no test image exists).
"""
from __future__ import annotations

import json
import os
import sys
import time


def make_image(path: str) -> None:
    from PIL import Image, ImageDraw
    import random
    rng = random.Random(0)
    img = Image.new("RGB", (640, 480), (120, 130, 140))
    draw = ImageDraw.Draw(img)
    for _ in range(40):
        x, y = rng.randrange(600), rng.randrange(440)
        w, h = rng.randrange(10, 160), rng.randrange(10, 120)
        color = tuple(rng.randrange(256) for _ in range(3))
        if rng.random() < 0.5:
            draw.rectangle([x, y, x + w, y + h], fill=color)
        else:
            draw.ellipse([x, y, x + w, y + h], fill=color)
    img.save(path, format="JPEG", quality=90)


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--image-only":
        make_image(sys.argv[2])
        return 0
    if len(sys.argv) not in (3, 5):
        print(__doc__, file=sys.stderr)
        return 2
    arch, out = sys.argv[1], sys.argv[2]
    os.environ.pop("MODEL_WEIGHTS", None)  # build_model would load it instead of the seeded weights
    os.environ.setdefault("MODEL_ARCH", arch)
    try:
        import torch
        import seed_server  # from ../shared/bench/baseline via PYTHONPATH
    except ImportError as e:
        print(f"seed_weights.py: {e} (needs python3-torch, python3-torchvision, python3-fastapi, "
              "python3-multipart, and PYTHONPATH=<baseline folder>)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    model = seed_server.build_model(arch)
    torch.save(model.state_dict(), out)
    info = {"arch": arch, "seed": seed_server.MODEL_SEED, "weights": out,
            "params": sum(p.numel() for p in model.parameters()),
            "torch": torch.__version__, "build_and_save_s": round(time.perf_counter() - t0, 3)}
    if len(sys.argv) == 5:
        image_path, ref_path = sys.argv[3], sys.argv[4]
        image = seed_server.decode(open(image_path, "rb").read())
        timer = seed_server.Timer()
        seed_server.state["model"] = model  # detect()/classify() read the model from the server's state
        if seed_server.is_classifier(arch):
            info["reference"] = seed_server.classify(image, timer)
        else:
            det = seed_server.detect(image, timer)
            scores = [float(s) for s in det["scores"]]
            info["reference"] = {
                "image_size": [image.width, image.height],
                "num_detections": len(scores),
                "num_above_0.7": sum(s > seed_server.SCORE_THRESHOLD for s in scores),
                "top_scores": [round(s, 5) for s in scores[:5]],
                "top_boxes": [[round(float(v), 2) for v in b] for b in det["boxes"][:5]],
                "top_labels": [int(l) for l in det["labels"][:5]],
            }
        with open(ref_path, "w") as f:
            json.dump(info, f, indent=1)
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
