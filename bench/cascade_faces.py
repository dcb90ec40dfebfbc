#!/usr/bin/env python3
"""The face-mask cascade's accuracy on faces with known places and labels (bench/cascade_accuracy.sh).

make:  a 640x480 MJPG video from a list of mask-dataset images (e.g. the validation side of `vigil data split`):
       two faces at a time, each image scaled to 130-180 px high, moving across a textured background for
       --frames frames, then the next two; writes the video and a JSON of every frame's faces (the pasted
       rectangle, the label = the image's folder, the image).
score: reads `vigil watch`'s detections log (outputs.detections) and that JSON. A face is *found* in a detected
       frame when a box's centre lies on its pasted rectangle (these photos show hair, neck and background
       around the face, so a face box never reaches IoU 0.5 with the rectangle; that IoU is printed too), and
       *classified right* when the found box's label is the image's folder. Prints, per class, the found rate
       over (face, detected frame) pairs and the mask accuracy over the found ones, as JSON on the last line.
"""
import argparse
import json
import os
import sys

import cv2
import numpy as np


def make(args):
    rels = [line.strip() for line in open(args.list) if line.strip()]
    if not rels:
        sys.exit(f"{args.list}: no images listed")
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(rels))
    w, h, fps = 640, 480, 25
    noise = rng.integers(50, 210, size=(60, 80, 3), dtype=np.uint8)
    background = cv2.GaussianBlur(cv2.resize(noise, (w, h), interpolation=cv2.INTER_LINEAR), (0, 0), 2)
    writer = cv2.VideoWriter(args.out, cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    if not writer.isOpened():
        sys.exit(f"cannot write {args.out}")
    truth = []
    for start in range(0, len(order), 2):
        faces = []
        for k, idx in enumerate(order[start:start + 2]):
            rel = rels[idx]
            img = cv2.imread(os.path.join(args.root, rel))
            if img is None:
                sys.exit(f"cannot read {os.path.join(args.root, rel)}")
            target = int(rng.integers(130, 181))
            scale = target / img.shape[0]
            img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            img = img[:, : min(img.shape[1], w // 2 - 10)]
            label = os.path.basename(os.path.dirname(rel))
            y0 = int(rng.integers(0, h - img.shape[0] + 1))
            faces.append((img, label, rel, k, y0))
        for i in range(args.frames):
            frame = background.copy()
            t = i / max(1, args.frames - 1)
            entry = []
            for img, label, rel, k, y0 in faces:
                fh, fw = img.shape[:2]
                lane = (w // 2 - fw)  # each face moves inside its own half
                x = k * (w // 2) + int(lane * (t if k == 0 else 1 - t))
                frame[y0:y0 + fh, x:x + fw] = img
                entry.append({"rect": [x, y0, fw, fh], "label": label, "image": rel})
            writer.write(frame)
            truth.append(entry)
    writer.release()
    json.dump({"fps": fps, "frames": truth}, open(args.truth, "w"))
    print(f"{args.out}: {len(truth)} frames, {len(rels)} faces", file=sys.stderr)


def iou(a, b):
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def score(args):
    truth = json.load(open(args.truth))["frames"]
    stats = {}
    detected_frames = 0
    for line in open(args.detections):
        if not line.strip():
            continue
        rec = json.loads(line)
        index = rec["frame"]
        if index >= len(truth):
            continue
        detected_frames += 1
        boxes = [(o["box"], o["label"]) for o in rec["objects"]]
        for face in truth[index]:
            x, y, fw, fh = face["rect"]
            rect = [x, y, x + fw, y + fh]
            s = stats.setdefault(face["label"], {"faces": 0, "found": 0, "iou50": 0, "right": 0})
            s["faces"] += 1
            hits = [(b, lab) for b, lab in boxes
                    if x <= (b[0] + b[2]) / 2 <= x + fw and y <= (b[1] + b[3]) / 2 <= y + fh]
            if not hits:
                continue
            s["found"] += 1
            s["iou50"] += any(iou(b, rect) >= 0.5 for b, _ in hits)
            best = max(hits, key=lambda h: iou(h[0], rect))
            s["right"] += best[1] == face["label"]
    out = {"detected_frames": detected_frames, "classes": {}}
    for label, s in sorted(stats.items()):
        found = s["found"]
        out["classes"][label] = {
            "faces": s["faces"], "found": found, "found_rate": found / s["faces"] if s["faces"] else 0,
            "iou50_rate": s["iou50"] / s["faces"] if s["faces"] else 0,
            "mask_accuracy": s["right"] / found if found else 0}
        print(f"{label:14} faces {s['faces']:5d}  found {found / max(1, s['faces']):.3f}  "
              f"IoU>=0.5 with the pasted photo {s['iou50'] / max(1, s['faces']):.3f}  "
              f"mask accuracy on found {s['right'] / max(1, found):.3f}", file=sys.stderr)
    print(json.dumps(out))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("--list", required=True, help="image paths relative to --root, one a line")
    m.add_argument("--root", required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--truth", required=True)
    m.add_argument("--frames", type=int, default=10, help="frames each pair of faces is shown")
    m.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("score")
    s.add_argument("--truth", required=True)
    s.add_argument("--detections", required=True)
    args = parser.parse_args()
    {"make": make, "score": score}[args.cmd](args)


if __name__ == "__main__":
    main()
