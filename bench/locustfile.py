"""Locust load for `vigil serve` (docs/serve-api.md), or for the seeds' Python server.

Headless, against a running server (bench/load.sh wraps this and prints a summary):

    IMAGE=img.jpg locust -f bench/locustfile.py --headless -u 4 -r 4 -t 60s \\
        --host http://127.0.0.1:8080 --csv /tmp/load/locust

Users (LOCUST_TARGET picks which class exists):
  vigil (default)  VigilUser: POST /v1/predict multipart (weight 4) and raw body (4), POST /predict/ (2),
                   and now and then GET /v1/models (1) and GET /v1/stats (1).
  seed             SeedUser: the Python seed server's POST /predict/ and POST /predict/json.
  accident         the accident-detection seed's users (its src/locustfile.py), against vigil's accident routes:
                   AccidentDetectionUser (GET /health 3, /prediction-stats 2, /training-data-sources 2,
                   /prediction-history 1, POST /predict with accident frames 1 and with non-accident frames 1),
                   DataUploadUser (POST /upload of a real frame with label Accident; weight 1) and StressTestUser
                   (rapid /health and /prediction-stats; weight 2). Think times are the seed's (1-3 s, 5-10 s,
                   0.1-0.5 s) unless WAIT_S is set; the upload user keeps 5-10 s unless UPLOAD_WAIT_S is set.
Every response is checked, not only its status: JSON with `detections` or `classification` and the echoed
X-Request-Id for /v1/predict, a PNG for /predict/, `models` for /v1/models, `requests` for /v1/stats; anything
else counts as a failure (with the reason) in Locust's statistics.

Env: IMAGE (default ../shared/bench/baseline/images/img_0_640x480.jpg), API_KEY (sent as X-API-Key),
     LOCUST_TARGET (vigil | seed | accident), WAIT_S (think time per user between requests, default 0),
     ACCIDENT_DATA (accident: a folder with Accident/ and Non Accident/ images, default
     ../shared/datasets/accidents/val), ACCIDENT_FRAMES (frames per /predict sequence, default 1 as the seed's),
     UPLOAD_WAIT_S (accident: the upload user's think time),
     REQ_TIMEOUT (s, default 60), V1_QUERY (query string for /v1/predict, e.g. score_threshold=0.5),
     LOCUST_WEIGHTS ("v1_multipart,v1_raw,seed_png,models,stats", default "4,4,2,1,1").
"""
from __future__ import annotations

import itertools
import json
import mimetypes
import os
import sys

from locust import HttpUser, between, constant, task

_HERE = os.path.dirname(os.path.abspath(__file__))
_DEFAULT_IMAGE = os.path.join(_HERE, "..", "..", "shared", "bench", "baseline", "images", "img_0_640x480.jpg")
if not os.path.exists(_DEFAULT_IMAGE):
    _DEFAULT_IMAGE = "/work/shared/bench/baseline/images/img_0_640x480.jpg"
IMAGE_PATH = os.environ.get("IMAGE") or _DEFAULT_IMAGE
try:
    with open(IMAGE_PATH, "rb") as _f:
        IMAGE = _f.read()
except OSError as _e:
    sys.exit(f"locustfile: cannot read the image {IMAGE_PATH!r}: {_e} (set IMAGE=/path/to/image.jpg)")
IMAGE_NAME = os.path.basename(IMAGE_PATH)
IMAGE_TYPE = mimetypes.guess_type(IMAGE_PATH)[0] or "application/octet-stream"
API_KEY = os.environ.get("API_KEY", "")
TARGET = os.environ.get("LOCUST_TARGET", "vigil")
WAIT_S = float(os.environ.get("WAIT_S", "0"))
REQ_TIMEOUT = float(os.environ.get("REQ_TIMEOUT", "60"))
V1_PATH = "/v1/predict" + (f"?{os.environ['V1_QUERY']}" if os.environ.get("V1_QUERY") else "")
_w = [int(x) for x in os.environ.get("LOCUST_WEIGHTS", "4,4,2,1,1").split(",")]
if len(_w) != 5:
    sys.exit("locustfile: LOCUST_WEIGHTS needs 5 comma-separated integers")
W_V1_MULTIPART, W_V1_RAW, W_SEED_PNG, W_MODELS, W_STATS = _w
if TARGET not in ("vigil", "seed", "accident"):
    sys.exit(f"locustfile: LOCUST_TARGET must be vigil, seed or accident, not {TARGET!r}")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_ids = itertools.count(1)


def _headers(extra: dict | None = None) -> dict:
    h = {"X-API-Key": API_KEY} if API_KEY else {}
    if extra:
        h.update(extra)
    return h


def _content_type(resp) -> str:
    return (resp.headers.get("Content-Type") or "").split(";")[0].strip().lower()


def _check_prediction(resp, request_id: str | None) -> None:
    """Fail the request unless it is a 200 /v1/predict answer for our image."""
    if resp.status_code != 200:
        resp.failure(f"HTTP {resp.status_code}: {resp.text[:200]}")
        return
    if _content_type(resp) != "application/json":
        resp.failure(f"Content-Type {resp.headers.get('Content-Type')!r}, expected application/json")
        return
    try:
        body = resp.json()
    except (ValueError, json.JSONDecodeError):
        resp.failure(f"not JSON: {resp.text[:200]!r}")
        return
    if "detections" not in body and "classification" not in body:
        resp.failure(f"neither detections nor classification: {resp.text[:200]}")
        return
    if request_id and resp.headers.get("X-Request-Id") != request_id:
        resp.failure(f"X-Request-Id {resp.headers.get('X-Request-Id')!r}, sent {request_id!r}")
        return
    resp.success()


def _check_png(resp) -> None:
    if resp.status_code != 200:
        resp.failure(f"HTTP {resp.status_code}: {resp.text[:200]}")
    elif not resp.content.startswith(PNG_MAGIC):
        resp.failure(f"not a PNG (Content-Type {resp.headers.get('Content-Type')!r}, "
                     f"{len(resp.content)} bytes)")
    else:
        resp.success()


def _check_json_key(resp, key: str) -> None:
    if resp.status_code != 200:
        resp.failure(f"HTTP {resp.status_code}: {resp.text[:200]}")
        return
    try:
        body = resp.json()
    except (ValueError, json.JSONDecodeError):
        resp.failure(f"not JSON: {resp.text[:200]!r}")
        return
    if not isinstance(body, dict) or key not in body:
        resp.failure(f"no {key!r} in {resp.text[:200]}")
    else:
        resp.success()


class VigilUser(HttpUser):
    """vigil serve: /v1/predict (multipart and raw), /predict/, now and then /v1/models and /v1/stats."""

    abstract = TARGET != "vigil"
    wait_time = constant(WAIT_S)

    @task(W_V1_MULTIPART)
    def v1_predict_multipart(self) -> None:
        rid = f"locust-m-{next(_ids)}"
        with self.client.post(V1_PATH, name="/v1/predict [multipart]", timeout=REQ_TIMEOUT, catch_response=True,
                              files={"file": (IMAGE_NAME, IMAGE, IMAGE_TYPE)},
                              headers=_headers({"X-Request-Id": rid})) as resp:
            _check_prediction(resp, rid)

    @task(W_V1_RAW)
    def v1_predict_raw(self) -> None:
        rid = f"locust-r-{next(_ids)}"
        with self.client.post(V1_PATH, name="/v1/predict [raw body]", timeout=REQ_TIMEOUT, catch_response=True,
                              data=IMAGE, headers=_headers({"Content-Type": IMAGE_TYPE, "X-Request-Id": rid})) as resp:
            _check_prediction(resp, rid)

    @task(W_SEED_PNG)
    def seed_predict_png(self) -> None:
        with self.client.post("/predict/", name="/predict/ [PNG]", timeout=REQ_TIMEOUT, catch_response=True,
                              files={"file": (IMAGE_NAME, IMAGE, IMAGE_TYPE)}, headers=_headers()) as resp:
            _check_png(resp)

    @task(W_MODELS)
    def models(self) -> None:
        with self.client.get("/v1/models", timeout=REQ_TIMEOUT, catch_response=True, headers=_headers()) as resp:
            _check_json_key(resp, "models")

    @task(W_STATS)
    def stats(self) -> None:
        with self.client.get("/v1/stats", timeout=REQ_TIMEOUT, catch_response=True, headers=_headers()) as resp:
            _check_json_key(resp, "requests")


class SeedUser(HttpUser):
    """The seeds' Python server (../shared/bench/baseline/seed_server.py): /predict/ (PNG) and /predict/json."""

    abstract = TARGET != "seed"
    wait_time = constant(WAIT_S)

    @task(1)
    def predict_png(self) -> None:
        with self.client.post("/predict/", name="/predict/ [PNG]", timeout=REQ_TIMEOUT, catch_response=True,
                              files={"file": (IMAGE_NAME, IMAGE, IMAGE_TYPE)}) as resp:
            _check_png(resp)

    @task(1)
    def predict_json(self) -> None:
        with self.client.post("/predict/json", name="/predict/json", timeout=REQ_TIMEOUT, catch_response=True,
                              files={"file": (IMAGE_NAME, IMAGE, IMAGE_TYPE)}) as resp:
            _check_json_key(resp, "boxes")


# ---- the accident-detection seed's users (LOCUST_TARGET=accident) ------------------------------------------

_DEFAULT_ACCIDENTS = os.path.join(_HERE, "..", "..", "shared", "datasets", "accidents", "val")
ACCIDENT_DATA = os.environ.get("ACCIDENT_DATA") or (
    _DEFAULT_ACCIDENTS if os.path.isdir(_DEFAULT_ACCIDENTS) else "/work/shared/datasets/accidents/val")
ACCIDENT_FRAMES = int(os.environ.get("ACCIDENT_FRAMES", "1"))


def _frames(folder: str, limit: int = 10) -> list[tuple[str, bytes]]:
    """Up to `limit` images of a class folder, read once (the seed's users take the first 10)."""
    path = os.path.join(ACCIDENT_DATA, folder)
    if not os.path.isdir(path):
        return []
    names = sorted(n for n in os.listdir(path) if n.lower().endswith((".jpg", ".jpeg", ".png")))[:limit]
    out = []
    for n in names:
        with open(os.path.join(path, n), "rb") as f:
            out.append((n, f.read()))
    return out


ACCIDENT_IMAGES = _frames("Accident") if TARGET == "accident" else []
NON_ACCIDENT_IMAGES = _frames("Non Accident") if TARGET == "accident" else []
if TARGET == "accident" and not (ACCIDENT_IMAGES and NON_ACCIDENT_IMAGES):
    sys.exit(f"locustfile: no images in {ACCIDENT_DATA!r}/Accident and /Non Accident (set ACCIDENT_DATA)")
_seq = itertools.count()


def _wait(seed_low: float, seed_high: float, env: str = "WAIT_S"):
    return constant(float(os.environ[env])) if os.environ.get(env) else between(seed_low, seed_high)


def _json_body(resp) -> dict | None:
    """The answer as a JSON object, or None after failing the request with the reason."""
    if resp.status_code != 200:
        resp.failure(f"HTTP {resp.status_code}: {resp.text[:200]}")
        return None
    try:
        body = resp.json()
    except (ValueError, json.JSONDecodeError):
        resp.failure(f"not JSON: {resp.text[:200]!r}")
        return None
    if not isinstance(body, dict):
        resp.failure(f"not a JSON object: {resp.text[:200]}")
        return None
    return body


def _check_health(resp) -> None:
    body = _json_body(resp)
    if body is None:
        return
    if body.get("status") != "Model is up and running":
        resp.failure(f"status {body.get('status')!r}")
    else:
        resp.success()


def _check_stats(resp) -> None:
    body = _json_body(resp)
    if body is None:
        return
    keys = ("total_predictions", "accident_predictions", "no_accident_predictions", "accident_rate",
            "average_confidence", "average_prediction")
    missing = [k for k in keys if k not in body]
    if missing:
        resp.failure(f"missing {missing}")
    elif body["accident_predictions"] + body["no_accident_predictions"] != body["total_predictions"]:
        resp.failure(f"accident + no_accident != total: {body}")
    elif not 0 <= body["accident_rate"] <= 100:
        resp.failure(f"accident_rate {body['accident_rate']} outside 0..100")
    else:
        resp.success()


def _check_sources(resp) -> None:
    body = _json_body(resp)
    if body is None:
        return
    fb = body.get("file_based")
    if not isinstance(fb, dict) or not all(isinstance(fb.get(k), int) for k in ("train", "test", "val")):
        resp.failure(f"file_based without train/test/val counts: {resp.text[:200]}")
    else:
        resp.success()


def _check_history(resp, limit: int) -> None:
    body = _json_body(resp)
    if body is None:
        return
    hist = body.get("prediction_history")
    if not isinstance(hist, list) or body.get("total_records") != len(hist) or len(hist) > limit:
        resp.failure(f"prediction_history / total_records inconsistent: {resp.text[:200]}")
    elif any(not 0 <= r.get("prediction_result", -1) <= 1 for r in hist):
        resp.failure("a record's prediction_result outside 0..1")
    else:
        resp.success()


def _check_accident_prediction(resp, frames: int) -> None:
    body = _json_body(resp)
    if body is None:
        return
    p = body.get("prediction")
    if not isinstance(p, (int, float)) or not 0 <= p <= 1:
        resp.failure(f"prediction {p!r} is not a probability")
    elif not isinstance(body.get("stored_in_mongodb"), bool) or not isinstance(body.get("images_stored"), int):
        resp.failure(f"stored_in_mongodb / images_stored missing: {resp.text[:200]}")
    elif len(body.get("frames", [])) != frames:
        resp.failure(f"{len(body.get('frames', []))} frames answered, {frames} sent")
    else:
        resp.success()


class AccidentDetectionUser(HttpUser):
    """The accident seed's main user: health, statistics, data sources, history and sequences to predict."""

    abstract = TARGET != "accident"
    wait_time = _wait(1, 3)

    def _get(self, path: str, check, name: str | None = None) -> None:
        with self.client.get(path, name=name or path.split("?")[0], timeout=REQ_TIMEOUT, catch_response=True,
                             headers=_headers()) as resp:
            check(resp)

    @task(3)
    def health(self) -> None:
        self._get("/health", _check_health)

    @task(2)
    def prediction_stats(self) -> None:
        self._get("/prediction-stats", _check_stats)

    @task(2)
    def training_data_sources(self) -> None:
        self._get("/training-data-sources", _check_sources)

    @task(1)
    def prediction_history(self) -> None:
        self._get("/prediction-history?limit=10", lambda r: _check_history(r, 10))

    def _predict(self, images: list[tuple[str, bytes]], name: str) -> None:
        start = next(_seq)
        chosen = [images[(start + k) % len(images)] for k in range(ACCIDENT_FRAMES)]
        files = [("files", (n, data, "image/jpeg")) for n, data in chosen]
        with self.client.post("/predict", name=name, files=files, timeout=REQ_TIMEOUT, catch_response=True,
                              headers=_headers()) as resp:
            _check_accident_prediction(resp, len(chosen))

    @task(1)
    def predict_accident(self) -> None:
        self._predict(ACCIDENT_IMAGES, "/predict [accident]")

    @task(1)
    def predict_non_accident(self) -> None:
        self._predict(NON_ACCIDENT_IMAGES, "/predict [non-accident]")


class DataUploadUser(HttpUser):
    """The accident seed's upload user: one labelled frame per request (a real image, not the seed's fake bytes,
    since vigil validates what it stores)."""

    abstract = TARGET != "accident"
    wait_time = _wait(5, 10, "UPLOAD_WAIT_S")
    weight = 1

    @task
    def upload(self) -> None:
        n, data = ACCIDENT_IMAGES[next(_seq) % len(ACCIDENT_IMAGES)]
        with self.client.post("/upload", data={"label": "Accident"}, files={"files": (n, data, "image/jpeg")},
                              timeout=REQ_TIMEOUT, catch_response=True, headers=_headers()) as resp:
            body = _json_body(resp)
            if body is None:
                return
            if body.get("status") != "Files uploaded successfully" or body.get("files_count") != 1:
                resp.failure(f"unexpected answer: {resp.text[:200]}")
            elif not body.get("version"):
                resp.failure("no dataset version in the answer")
            else:
                resp.success()


class StressTestUser(HttpUser):
    """The accident seed's high-frequency user: rapid /health and /prediction-stats."""

    abstract = TARGET != "accident"
    wait_time = _wait(0.1, 0.5)
    weight = 2

    @task
    def rapid_health(self) -> None:
        with self.client.get("/health", name="/health [stress]", timeout=REQ_TIMEOUT, catch_response=True,
                             headers=_headers()) as resp:
            _check_health(resp)

    @task
    def rapid_stats(self) -> None:
        with self.client.get("/prediction-stats", name="/prediction-stats [stress]", timeout=REQ_TIMEOUT,
                             catch_response=True, headers=_headers()) as resp:
            _check_stats(resp)
