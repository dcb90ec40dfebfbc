"""Locust load for `vigil serve` (docs/serve-api.md), or for the seeds' Python server.

Headless, against a running server (bench/load.sh wraps this and prints a summary):

    IMAGE=img.jpg locust -f bench/locustfile.py --headless -u 4 -r 4 -t 60s \\
        --host http://127.0.0.1:8080 --csv /tmp/load/locust

Users (LOCUST_TARGET picks which class exists):
  vigil (default)  VigilUser: POST /v1/predict multipart (weight 4) and raw body (4), POST /predict/ (2),
                   and now and then GET /v1/models (1) and GET /v1/stats (1).
  seed             SeedUser: the Python seed server's POST /predict/ and POST /predict/json.
Every response is checked, not only its status: JSON with `detections` or `classification` and the echoed
X-Request-Id for /v1/predict, a PNG for /predict/, `models` for /v1/models, `requests` for /v1/stats; anything
else counts as a failure (with the reason) in Locust's statistics.

Env: IMAGE (default ../shared/bench/baseline/images/img_0_640x480.jpg), API_KEY (sent as X-API-Key),
     LOCUST_TARGET (vigil | seed), WAIT_S (think time per user between requests, default 0),
     REQ_TIMEOUT (s, default 60), V1_QUERY (query string for /v1/predict, e.g. score_threshold=0.5),
     LOCUST_WEIGHTS ("v1_multipart,v1_raw,seed_png,models,stats", default "4,4,2,1,1").
"""
from __future__ import annotations

import itertools
import json
import mimetypes
import os
import sys

from locust import HttpUser, constant, task

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
if TARGET not in ("vigil", "seed"):
    sys.exit(f"locustfile: LOCUST_TARGET must be vigil or seed, not {TARGET!r}")

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
