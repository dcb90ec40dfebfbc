#!/usr/bin/python3
"""Summarise a bench/serve.sh results folder: print the comparison table and write RESULTS_DIR/results.md.

    /usr/bin/python3 bench/serve_report.py RESULTS_DIR

Reads env.txt, commands.txt, phases.jsonl (one line per wrk phase; the last attempt of each counts),
servers.jsonl (start-up, RSS, peak RSS = VmHWM, exit status) and per arch seed.json and the warm-up samples.
Exit status 1 when a request failed (non-2xx, socket error, wrong Content-Type), a server died or did not start,
or a phase is missing; else 0.
"""
from __future__ import annotations

import io
import json
import os
import sys

PAIRS = [  # (pair key, label, python route, vigil route)
    ("png", "PNG, seed route", "/predict/", "/predict/"),
    ("json", "JSON", "/predict/json", "/v1/predict (multipart)"),
    ("json_raw", "JSON, raw body", None, "/v1/predict (raw body)"),
]


def load_jsonl(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    out = []
    for line in open(path):
        line = line.strip()
        if line:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


def fmt(v, digits=1, comma=True):
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    return f"{v:,.{digits}f}" if comma else f"{v:.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def socket_errors(w: dict) -> int:
    return w["err_connect"] + w["err_read"] + w["err_write"] + w["err_timeout"]


def png_info(path: str):
    try:
        from PIL import Image
        with open(path, "rb") as f:
            data = f.read()
        if not data.startswith(b"\x89PNG\r\n\x1a\n"):
            return None, f"not a PNG ({len(data)} bytes, starts {data[:16]!r})"
        img = Image.open(io.BytesIO(data))
        img.load()
        return img.convert("RGB"), f"PNG {img.width}x{img.height}, {len(data):,} bytes"
    except FileNotFoundError:
        return None, "no sample"
    except Exception as e:  # noqa: BLE001 - any decoding problem is reported as such
        return None, f"unreadable: {e}"


def pixel_diff(a, b) -> str:
    if a is None or b is None:
        return "–"
    if a.size != b.size:
        return f"sizes differ: {a.size} vs {b.size}"
    try:
        import numpy as np
        x = np.asarray(a, dtype=np.int16)
        y = np.asarray(b, dtype=np.int16)
        d = np.abs(x - y)
        return (f"mean |diff| {d.mean():.2f}, max {int(d.max())}, "
                f"pixels differing by > 8: {100.0 * (d.max(axis=2) > 8).mean():.2f}%")
    except ImportError:
        return "numpy missing"


def json_sample(path: str):
    try:
        with open(path) as f:
            return json.load(f), None
    except FileNotFoundError:
        return None, "no sample"
    except Exception as e:  # noqa: BLE001
        with open(path, "rb") as f:
            head = f.read(200)
        return None, f"not JSON ({e}): {head!r}"


def phase_line() -> int:
    """One wrk summary (the WRKJSON payload on stdin) as a short human line."""
    try:
        w = json.loads(sys.stdin.read())
    except json.JSONDecodeError:
        w = None
    if not isinstance(w, dict):
        print("no wrk result")
        return 0
    print(f"{w['rps']:.2f} req/s, p50 {w['lat_p50_ms']:.1f} ms, p99 {w['lat_p99_ms']:.1f} ms, {w['requests']} requests, "
          f"non-2xx {w['non2xx']}, socket errors {socket_errors(w)}, wrong type {w['bad_content_type']}")
    return 0


def main() -> int:
    if len(sys.argv) == 2 and sys.argv[1] == "--phase-line":
        return phase_line()
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    res = sys.argv[1]
    env = open(os.path.join(res, "env.txt")).read() if os.path.exists(os.path.join(res, "env.txt")) else ""
    phases = {}
    tries = {}
    for p in load_jsonl(os.path.join(res, "phases.jsonl")):
        key = (p["arch"], p["server"], p["pair"])
        phases[key] = p  # last attempt wins
        tries[key] = p.get("try", 1)
    servers = {(s["arch"], s["server"]): s for s in load_jsonl(os.path.join(res, "servers.jsonl"))}
    archs = []
    for a, _ in servers:
        if a not in archs:
            archs.append(a)
    for a, _, _ in phases:
        if a not in archs:
            archs.append(a)
    other_max = 0.3
    vigil_raw = "VIGIL_RAW=0" not in env
    for line in env.splitlines():
        if line.startswith("interference:"):
            for tok in line.split():
                if tok.startswith("OTHER_MAX="):
                    other_max = float(tok.split("=", 1)[1])

    problems: list[str] = []
    lines: list[str] = []
    lines.append("| arch | route pair | server: route | req/s | p50 ms | p95 ms | p99 ms | requests | "
                 "non-2xx / socket errors / wrong type | foreign load (cores) |")
    lines.append("|---|---|---|---:|---:|---:|---:|---:|---|---:|")
    total_requests = 0
    for arch in archs:
        for pair, label, py_route, vg_route in PAIRS:
            rows = []
            for server, route in (("python", py_route), ("vigil", vg_route)):
                if route is None:
                    continue
                if (arch, server) not in servers and (arch, server, pair) not in phases:
                    continue
                p = phases.get((arch, server, pair))
                w = p.get("wrk") if p else None
                if not w:
                    if pair == "json_raw" and not vigil_raw:
                        continue
                    rows.append((server, route, None, p))
                    srv = servers.get((arch, server), {})
                    # a server that did not start or died is reported below; here only an unexplained gap
                    if p or (srv.get("started") and srv.get("alive_at_end")):
                        problems.append(f"{arch} {server} {route}: no measurement"
                                        + (f" (wrk exit {p['wrk_rc']})" if p else ""))
                    continue
                rows.append((server, route, w, p))
                total_requests += w["requests"]
                nerr = w["non2xx"] + socket_errors(w) + w["bad_content_type"]
                if nerr or w["requests"] == 0:
                    problems.append(
                        f"{arch} {server} {route}: {w['non2xx']} non-2xx (statuses {w['statuses']}), "
                        f"{socket_errors(w)} socket errors (connect {w['err_connect']}, read {w['err_read']}, "
                        f"write {w['err_write']}, timeout {w['err_timeout']}), {w['bad_content_type']} wrong "
                        f"Content-Type, {w['requests']} requests; first unexpected: {w.get('first_unexpected') or '–'}")
            if not rows:
                continue
            for server, route, w, p in rows:
                if w is None:
                    lines.append(f"| {arch} | {label} | {server}: {route} | – | – | – | – | – | not measured | – |")
                    continue
                other = p["cpu"]["other"]
                flag = " ⚠" if other > other_max else ""
                att = f" (attempt {tries[(arch, server, pair)]})" if tries[(arch, server, pair)] > 1 else ""
                lines.append(
                    f"| {arch} | {label} | {server}: {route} | {fmt(w['rps'], 2)} | {fmt(w['lat_p50_ms'])} | "
                    f"{fmt(w['lat_p95_ms'])} | {fmt(w['lat_p99_ms'])} | {w['requests']:,} | "
                    f"{w['non2xx']} / {socket_errors(w)} / {w['bad_content_type']} | {other:.2f}{flag}{att} |")
            got = {s: w for s, _, w, _ in rows}
            if got.get("python") and got.get("vigil"):
                py, vg = got["python"], got["vigil"]
                r = [ratio(vg["rps"], py["rps"])] + [ratio(py[k], vg[k]) for k in
                                                     ("lat_p50_ms", "lat_p95_ms", "lat_p99_ms")]
                lines.append(f"| {arch} | {label} | **ratio** (req/s vigil/python; latency python/vigil) | "
                             + " | ".join(f"**{fmt(x, 2)}×**" for x in r) + " | | | |")
    table = "\n".join(lines)

    # memory and lifecycle
    mem = ["| arch | server | start-up s | RSS after load MiB | after warm-up | at end | **peak RSS (VmHWM) MiB** | "
           "threads | alive at end | exit status after SIGTERM |",
           "|---|---|---:|---:|---:|---:|---:|---:|---|---|"]

    def mib(v):
        return fmt(v / 1024.0, 0) if isinstance(v, (int, float)) else "–"

    for (arch, server), s in servers.items():
        if not s.get("started"):
            mem.append(f"| {arch} | {server} | did not start | | | | | | | |")
            problems.append(f"{arch} {server}: server did not start (see {arch}/{server}/server.log)")
            continue
        mem.append(f"| {arch} | {server} | {fmt(s.get('startup_s'), 2)} | {mib(s.get('rss_after_load_kib'))} | "
                   f"{mib(s.get('rss_after_warmup_kib'))} | {mib(s.get('rss_end_kib'))} | "
                   f"**{mib(s.get('peak_rss_kib'))}** | {s.get('threads') or '–'} | {s.get('alive_at_end')} | "
                   f"{s.get('exit_status') or '–'} |")
        if not s.get("alive_at_end"):
            problems.append(f"{arch} {server}: the server was not alive at the end of its measurements "
                            f"(exit status {s.get('exit_status')}; see {arch}/{server}/server.log)")
        elif s.get("exit_status") not in ("0", 0):
            problems.append(f"{arch} {server}: exit status {s.get('exit_status')} after SIGTERM (expected 0)")
    mem_table = "\n".join(mem)

    # content checks on the warm-up samples
    checks: list[str] = []
    for arch in archs:
        adir = os.path.join(res, arch)
        seed, _ = json_sample(os.path.join(adir, "seed.json"))
        ref = (seed or {}).get("reference") or {}
        if ref:
            checks.append(f"- {arch}: torchvision in-process (seed_weights.py) on the image: "
                          f"{ref.get('num_detections')} detections, {ref.get('num_above_0.7')} above 0.7, "
                          f"top scores {ref.get('top_scores')}")
        py_png, py_desc = png_info(os.path.join(adir, "python", "sample_png.png"))
        vg_png, vg_desc = png_info(os.path.join(adir, "vigil", "sample_png.png"))
        if os.path.isdir(os.path.join(adir, "python")):
            checks.append(f"- {arch} python /predict/: {py_desc}")
        if os.path.isdir(os.path.join(adir, "vigil")):
            checks.append(f"- {arch} vigil /predict/: {vg_desc}"
                          + (f"; vs python's PNG: {pixel_diff(py_png, vg_png)}" if py_png is not None else ""))
            if vg_png is None:
                problems.append(f"{arch} vigil /predict/ sample: {vg_desc}")
            elif ref.get("image_size") and list(vg_png.size) != ref["image_size"]:
                problems.append(f"{arch} vigil /predict/ PNG is {vg_png.size}, the input is {ref['image_size']}")
        pj, err = json_sample(os.path.join(adir, "python", "sample_json.json"))
        if pj is not None:
            checks.append(f"- {arch} python /predict/json: num_raw_detections {pj.get('num_raw_detections')}, "
                          f"{len(pj.get('boxes', []))} boxes above 0.7, image_size {pj.get('image_size')}")
        for pair, route in (("json", "/v1/predict (multipart)"), ("json_raw", "/v1/predict (raw body)")):
            path = os.path.join(adir, "vigil", f"sample_{pair}.json")
            if not os.path.exists(path):
                continue
            vj, err = json_sample(path)
            if vj is None:
                checks.append(f"- {arch} vigil {route}: {err}")
                problems.append(f"{arch} vigil {route} sample: {err}")
                continue
            if "detections" in vj:
                dets = vj["detections"]
                scores = [d.get("score") for d in dets]
                desc = (f"{len(dets)} detections, {sum(1 for s in scores if s is not None and s > 0.7)} above 0.7, "
                        f"top scores {[round(s, 5) for s in scores[:5] if s is not None]}, image {vj.get('image')}, "
                        f"batch_size {vj.get('batch_size')}, timings_ms {vj.get('timings_ms')}")
                if scores != sorted(scores, reverse=True):
                    problems.append(f"{arch} vigil {route}: detections not sorted by descending score")
                if ref.get("image_size") and vj.get("image") and \
                        [vj["image"].get("width"), vj["image"].get("height")] != ref["image_size"]:
                    problems.append(f"{arch} vigil {route}: image {vj.get('image')} but the input is "
                                    f"{ref['image_size']}")
                if ref.get("num_detections") is not None and len(dets) != ref["num_detections"]:
                    desc += f" (torchvision: {ref['num_detections']})"
            elif "classification" in vj:
                desc = f"classification {vj['classification']}"
            else:
                desc = f"neither detections nor classification: {json.dumps(vj)[:300]}"
                problems.append(f"{arch} vigil {route}: {desc}")
            checks.append(f"- {arch} vigil {route}: {desc}")
        st, _ = json_sample(os.path.join(adir, "vigil", "stats.json"))
        if st:
            b = st.get("batches") or {}
            avg = (b.get("inferences") / b["executions"]) if b.get("executions") else None
            checks.append(f"- {arch} vigil /v1/stats at the end: requests {st.get('requests')}, errors "
                          f"{st.get('errors')}, predictions {st.get('predictions')}, batches {b}, average batch "
                          f"{fmt(avg, 2)}, latency_ms {st.get('latency_ms')}")
            if st.get("errors"):
                problems.append(f"{arch} vigil /v1/stats counts {st.get('errors')} errors")
        warm = os.path.join(adir, "vigil", "warmup.tsv"), os.path.join(adir, "python", "warmup.tsv")
        for wpath in warm:
            if os.path.exists(wpath):
                for row in open(wpath):
                    f = row.rstrip("\n").split("\t")
                    if len(f) >= 3 and f[2] != "200":
                        problems.append(f"{arch} warm-up {wpath.split('/')[-2]} {f[1]}: HTTP {f[2]} ({f[5:]})")

    dirty = [f"{a} {s} {p}" for (a, s, p), ph in phases.items() if ph["cpu"]["other"] > other_max]
    noise = (f"\n\n⚠ {len(dirty)} of {len(phases)} phases ran with more than {other_max} cores of foreign CPU load "
             "even after the retries: treat their figures (and the ratios built on them) as indicative only and "
             "re-run on an idle machine." if dirty else
             f"\n\nAll {len(phases)} phases ran on an otherwise idle machine (foreign load ≤ {other_max} cores).")
    if problems:
        verdict = "**Failed requests / problems:**\n\n" + "\n".join(f"- {p}" for p in problems)
    else:
        verdict = (f"**No failed requests**: all {total_requests:,} measured requests answered 2xx with the expected "
                   "Content-Type, no socket errors, no timeouts; the servers stayed up.")

    commands = open(os.path.join(res, "commands.txt")).read() if os.path.exists(
        os.path.join(res, "commands.txt")) else ""
    md = f"""# Serving benchmark: seed Python server vs vigil serve

Produced by `bench/serve.sh` (raw outputs beside this file: `phases.jsonl`, `servers.jsonl`, `<arch>/<server>/`).
wrk closed loop: each connection sends its next request when the previous answer arrives; requests/s counts
answers completed inside the window; latency percentiles are wrk's (no coordinated-omission correction).
Ratios: req/s vigil / python (> 1 = vigil ahead); latency python / vigil (> 1 = vigil faster).
*foreign load* = cores used by other processes during the phase (machine − server − wrk), ⚠ above {other_max}.

## Machine and settings

```
{env.strip()}
```

## Throughput and latency

{table}

{verdict}{noise}

## Memory and lifecycle

VmRSS / VmHWM from /proc/PID/status of the server process; peak = VmHWM read just before SIGTERM.

{mem_table}

## Content checks (first warm-up response of each route)

{chr(10).join(checks) if checks else '- none'}

## Commands

```
{commands.strip()}
```
"""
    with open(os.path.join(res, "results.md"), "w") as f:
        f.write(md)
    print()
    print(table)
    print()
    print(mem_table)
    print()
    print("\n".join(checks))
    print()
    print(verdict + noise)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
