#!/usr/bin/python3
"""The seeds' way of watching video, for bench/video.sh: an OpenCV capture loop and torchvision, one frame at a
time, one Python process per camera (how the face-mask and guns seeds run a camera).

    video_ref.py detect --arch ARCH --weights W.pth --video V --cams N --fps F --seconds S --threads T
        N processes, each reading V as a live camera (the frame it gets is the one the file's clock has reached,
        like a camera that does not wait) and running ARCH on it F times a second (F = 0: every frame, as fast
        as it goes, the file read frame by frame). Torch threads: T / N per process (at least 1), so the
        processes share the cores instead of oversubscribing them. One JSON line: per camera detections,
        dropped slots (a detection due while the previous one still ran), capture -> result latency p50/p95.
    video_ref.py cascade --weights MASK.pth --video V --threads T
        The face-mask seed's loop on every frame of V: Haar face cascade (the same settings as vigil's
        defaults), each face cropped with a 15% margin, resized to 100x100 and classified by the seed's small
        CNN (bench/models_ref.py's MaskSmallCnn) in one batch. One JSON line: frames, faces, ms per frame.
    video_ref.py make-face-video OUT.avi --masks DIR [--seconds S]
        A 640x480, 25 fps MJPG video of two real faces of the mask dataset (one masked, one not) moving across a
        textured background: the cascade benchmark's input, built from real face images.

Weights: the seed server's own build_model (bench/seed_weights.py writes them; PYTHONPATH = the baseline folder)
for detectors, so vigil and Python run identical weights.
"""
from __future__ import annotations

import argparse
import glob
import json
import multiprocessing as mp
import os
import statistics
import sys
import time

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def percentile(values, q):
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100.0 * (len(ordered) - 1))))]


def camera_loop(args, index, out):
    import torch
    import torchvision.transforms.functional as TF
    torch.set_num_threads(max(1, args.threads // args.cams))
    os.environ["MODEL_WEIGHTS"] = args.weights
    import seed_server  # the baseline's own model construction (PYTHONPATH)
    model = seed_server.build_model(args.arch)
    cap = cv2.VideoCapture(args.video)
    if not cap.isOpened():
        out.put({"camera": index, "error": f"cannot open {args.video}"})
        return
    src_fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    with torch.no_grad():  # warm-up, as vigil loads and warms its model before the clock starts
        ok, frame = cap.read()
        model([TF.to_tensor(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))])
    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
    position = 0  # frames read so far
    detected = dropped = 0
    latencies = []
    start = time.perf_counter()
    next_slot = start
    period = 1.0 / args.fps if args.fps > 0 else 0.0
    while True:
        now = time.perf_counter()
        if now - start >= args.seconds:
            break
        if period and now < next_slot:
            time.sleep(next_slot - now)
            continue
        # A live camera: the newest frame is the one the file's clock has reached; capacity mode reads on.
        target = int((now - start) * src_fps) + 1 if period else position + 1
        while position < target:
            if not cap.grab():  # loop the file, as vigil's `loop: true`
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                if not cap.grab():
                    break
            position += 1
        ok, frame = cap.retrieve()
        if not ok:
            break
        arrived = start + (target - 1) / src_fps if period else time.perf_counter()
        with torch.no_grad():
            model([TF.to_tensor(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))])
        done = time.perf_counter()
        detected += 1
        latencies.append(max(0.0, done - arrived) * 1000.0)
        if period:
            next_slot += period
            while next_slot < done:  # slots that passed while this detection ran
                next_slot += period
                dropped += 1
    seconds = time.perf_counter() - start
    out.put({"camera": index, "detected": detected, "dropped": dropped, "seconds": seconds,
             "latency_p50_ms": percentile(latencies, 50), "latency_p95_ms": percentile(latencies, 95)})


def detect(args):
    sys.path.insert(0, os.environ.get("PYTHONPATH", ""))
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=camera_loop, args=(args, i, out)) for i in range(args.cams)]
    for p in procs:
        p.start()
    cams = [out.get() for _ in procs]
    for p in procs:
        p.join()
    cams.sort(key=lambda c: c["camera"])
    print(json.dumps({"cameras": cams}))


def cascade(args):
    import torch
    sys.path.insert(0, os.path.join(HERE, "..", "tests", "parity"))
    from gen_classifiers import MaskSmallCnn
    torch.set_num_threads(args.threads)
    model = MaskSmallCnn(2)
    model.load_state_dict(torch.load(args.weights, map_location="cpu"))
    model.eval()
    face = cv2.CascadeClassifier("/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml")
    cap = cv2.VideoCapture(args.video)
    frames = faces = 0
    start = time.perf_counter()
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        gray = cv2.equalizeHist(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
        boxes = face.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=4, minSize=(24, 24))
        crops = []
        h, w = frame.shape[:2]
        for (x, y, bw, bh) in boxes:
            mx, my = int(0.15 * bw), int(0.15 * bh)
            crop = frame[max(0, y - my):min(h, y + bh + my), max(0, x - mx):min(w, x + bw + mx)]
            crop = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB), (100, 100))
            crops.append(torch.from_numpy(crop).permute(2, 0, 1).float() / 255.0)
        if crops:
            with torch.no_grad():
                model(torch.stack(crops)).softmax(1)
        frames += 1
        faces += len(crops)
    seconds = time.perf_counter() - start
    print(json.dumps({"frames": frames, "faces": faces, "seconds": seconds,
                      "ms_per_frame": 1000.0 * seconds / max(1, frames)}))


def make_face_video(args):
    masked = sorted(glob.glob(os.path.join(args.masks, "with_mask", "*")))
    bare = sorted(glob.glob(os.path.join(args.masks, "without_mask", "*")))
    if not masked or not bare:
        sys.exit(f"no with_mask/ and without_mask/ images under {args.masks}")
    faces = []
    for path in (masked[len(masked) // 3], bare[len(bare) // 3]):
        img = cv2.imread(path)
        if img is None:
            sys.exit(f"cannot read {path}")
        scale = 140.0 / img.shape[0]
        faces.append(cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
    rng = np.random.default_rng(0)
    background = rng.integers(60, 200, size=(48, 64, 3), dtype=np.uint8)
    background = cv2.GaussianBlur(cv2.resize(background, (640, 480), interpolation=cv2.INTER_LINEAR), (0, 0), 3)
    fps = 25
    writer = cv2.VideoWriter(args.out, cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    n = int(args.seconds * fps)
    for i in range(n):
        frame = background.copy()
        t = i / max(1, n - 1)
        for k, img in enumerate(faces):
            fh, fw = img.shape[:2]
            x = int((640 - fw) * (t if k == 0 else 1 - t))
            y = 40 + k * 200 + int(20 * np.sin(6.28 * t * 2))
            y = min(max(0, y), 480 - fh)
            frame[y:y + fh, x:x + fw] = img
        writer.write(frame)
    writer.release()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("detect")
    d.add_argument("--arch", required=True)
    d.add_argument("--weights", required=True)
    d.add_argument("--video", required=True)
    d.add_argument("--cams", type=int, default=1)
    d.add_argument("--fps", type=float, default=5)
    d.add_argument("--seconds", type=float, default=20)
    d.add_argument("--threads", type=int, default=os.cpu_count())
    c = sub.add_parser("cascade")
    c.add_argument("--weights", required=True)
    c.add_argument("--video", required=True)
    c.add_argument("--threads", type=int, default=os.cpu_count())
    m = sub.add_parser("make-face-video")
    m.add_argument("out")
    m.add_argument("--masks", required=True)
    m.add_argument("--seconds", type=float, default=12)
    args = parser.parse_args()
    {"detect": detect, "cascade": cascade, "make-face-video": make_face_video}[args.cmd](args)


if __name__ == "__main__":
    main()
