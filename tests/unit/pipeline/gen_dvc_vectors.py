#!/usr/bin/python3
"""Regenerates the DVC-compatibility test vectors hard-coded in dvc_hash_test.cpp.

DVC itself is not installed here, so this script recomputes what DVC 3 computes, step by step as its source
does (dvc-data 3.x and dvc 3.x; each function is cited where it is mirrored):

  * file hash     dvc_data/hashfile/hash.py  file_md5 / HashStreamFile: hashlib.md5 over the raw bytes, read in
                  1 MiB chunks ("hash: md5" in DVC 3).
  * legacy hash   dvc_data/hashfile/hash.py  Dos2UnixHashStreamFile + istextfile.py istextblock: a chunk whose
                  first 512 bytes look like text gets CRLF -> LF before hashing (DVC 2's md5, no "hash:" line).
  * dir hash      dvc_data/hashfile/build.py _build_tree (os.walk, DvcIgnoreFilter drops .git/.hg/.dvc;
                  size = sum of file sizes, nfiles = count) and dvc_data/hashfile/tree.py Tree.as_list /
                  Tree.as_bytes / Tree.digest: md5(json.dumps(sorted([{"md5": .., "relpath": ..}]),
                  sort_keys=True).encode("utf-8")) + ".dir".
  * dvc.lock      dvc/stage/serialize.py to_single_stage_lockfile + _serialize_params_values, dvc/dvcfile.py
                  Lockfile.dump ({"schema": "2.0", "stages": ...}), written with ruamel.yaml as
                  dvc/utils/serialize/_yaml.py does (YAML(), default_flow_style=False). Needs python3-ruamel.yaml.

Usage: /usr/bin/python3 tests/unit/pipeline/gen_dvc_vectors.py   (prints the values to paste into the test)
       /usr/bin/python3 tests/unit/pipeline/gen_dvc_vectors.py --yaml-fuzz SEED N
           (N random lock-like documents as JSON lines [document, ruamel's YAML text]; the test compares them)
The file contents below are duplicated in dvc_hash_test.cpp; change both together.
"""

import hashlib
import io
import json
import os
import posixpath
import tempfile
from collections import OrderedDict

# ---- inputs shared with dvc_hash_test.cpp --------------------------------------------------------------------

KNOWN_FILE = b"vigil: one binary for visual-safety ML\n"
CRLF_FILE = b"line one\r\nline two\r\n"

# The known directory: a nested folder, a non-ASCII name (BMP and astral), an empty file, an empty folder and a
# .git folder (DVC ignores it).
KNOWN_DIR = {
    "a.txt": b"alpha\n",
    "empty.bin": b"",
    "sub/b.csv": b"x,y\n1,2\n",
    "sub/deeper/c.json": b'{"k": 1}\n',
    "\u00fcn\u00ef \u20ac.txt": b"unicode name\n",
    "emoji \U0001F600.txt": b"astral\n",
    "a.b/z": b"sorted after a.txt, before a/\n",
    ".git/HEAD": b"ref: refs/heads/main\n",
}
EMPTY_DIRS = ["empty_dir"]

# The pipeline whose dvc.lock is a vector. Outputs are the bytes the stage commands write.
PIPELINE_FILES = {
    "raw.csv": b"id,value\n1,10\n2,20\n",
    "params.yaml": (
        b"prepare:\n  split: 0.2\n  seed: 20170428\n"
        b"train:\n  lr: 1.0e-05\n  epochs: 3\n  opt:\n    name: sgd\n    momentum: 0.9\n"
    ),
}
PIPELINE_OUTPUTS = {
    "prepared/train.csv": b"id,value\n1,10\n",
    "prepared/test.csv": b"id,value\n2,20\n",
    "model.bin": b"model lr=1e-05 epochs=3\n",
    "metrics.json": b'{"acc": 0.9, "loss": 0.25}\n',
}
PREPARE_CMD = (
    "mkdir -p prepared && head -n 2 raw.csv > prepared/train.csv && (head -n 1 raw.csv; tail -n 1 raw.csv)"
    " > prepared/test.csv"
)
TRAIN_CMD = "printf 'model lr=%s epochs=%s\\n' 1e-05 3 > model.bin"
EVALUATE_CMD = ["echo '{\"acc\": 0.9, \"loss\": 0.25}' > metrics.json"]


# ---- DVC's algorithms -----------------------------------------------------------------------------------------

def file_md5(data: bytes) -> str:
    """hash.py file_md5 with name="md5": plain md5 of the bytes."""
    return hashlib.md5(data).hexdigest()


TEXT_CHARS = bytes(range(32, 127)) + b"\n\r\t\f\b"


def istextblock(block: bytes) -> bool:
    """istextfile.py istextblock."""
    if not block:
        return True
    if b"\x00" in block:
        return False
    nontext = block.translate(None, TEXT_CHARS)
    return float(len(nontext)) / len(block) <= 0.30


def dos2unix_md5(data: bytes) -> str:
    """hash.py Dos2UnixHashStreamFile: per 1 MiB chunk, CRLF -> LF when the chunk's first 512 bytes are text."""
    h = hashlib.md5()
    for i in range(0, len(data), 2**20):
        chunk = data[i:i + 2**20]
        h.update(chunk.replace(b"\r\n", b"\n") if istextblock(chunk[:512]) else chunk)
    return h.hexdigest()


def build_tree(root: str):
    """build.py _build_tree over os.walk (followlinks=False), dropping what DvcIgnoreFilter's defaults drop."""
    entries, size = [], 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in (".git", ".hg", ".dvc")]
        filenames = [f for f in filenames if f != ".git"]
        for name in filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root).split(os.sep)
            with open(path, "rb") as f:
                data = f.read()
            entries.append({"md5": file_md5(data), "relpath": posixpath.sep.join(rel)})
            size += len(data)
    # tree.py Tree.as_list (sorted by relpath) and Tree.as_bytes.
    obj = json.dumps(sorted(entries, key=lambda e: e["relpath"]), sort_keys=True).encode("utf-8")
    return hashlib.md5(obj).hexdigest() + ".dir", size, len(entries), obj


def write_tree(root: str, files: dict, empty_dirs=()):
    for rel, data in files.items():
        path = os.path.join(root, *rel.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    for d in empty_dirs:
        os.makedirs(os.path.join(root, d), exist_ok=True)


def entry(path: str, md5: str, size: int, nfiles=None) -> OrderedDict:
    """serialize.py to_single_stage_lockfile._dumpd: path, hash, then HashInfo.to_dict and Meta.to_dict."""
    d = OrderedDict([("path", path), ("hash", "md5"), ("md5", md5), ("size", size)])
    if nfiles is not None:
        d["nfiles"] = nfiles
    return d


def lock_text() -> str:
    from ruamel.yaml import YAML

    with tempfile.TemporaryDirectory() as tmp:
        write_tree(tmp, {**PIPELINE_FILES, **PIPELINE_OUTPUTS})
        md5 = {rel: file_md5(data) for rel, data in {**PIPELINE_FILES, **PIPELINE_OUTPUTS}.items()}
        size = {rel: len(data) for rel, data in {**PIPELINE_FILES, **PIPELINE_OUTPUTS}.items()}
        prepared_md5, prepared_size, prepared_n, _ = build_tree(os.path.join(tmp, "prepared"))
    stages = OrderedDict()
    stages["prepare"] = OrderedDict([
        ("cmd", PREPARE_CMD),
        ("deps", [entry("raw.csv", md5["raw.csv"], size["raw.csv"])]),
        ("params", OrderedDict([("params.yaml", OrderedDict([("prepare.split", 0.2)]))])),
        ("outs", [entry("prepared", prepared_md5, prepared_size, prepared_n)]),
    ])
    stages["train"] = OrderedDict([
        ("cmd", TRAIN_CMD),
        ("deps", [entry("prepared/train.csv", md5["prepared/train.csv"], size["prepared/train.csv"])]),
        # _serialize_params_values: keys sorted; a whole section is recorded as its mapping.
        ("params", OrderedDict([("params.yaml", OrderedDict([
            ("train.epochs", 3), ("train.lr", 1e-05),
            ("train.opt", OrderedDict([("name", "sgd"), ("momentum", 0.9)]))]))])),
        ("outs", [entry("model.bin", md5["model.bin"], size["model.bin"])]),
    ])
    stages["evaluate"] = OrderedDict([
        ("cmd", EVALUATE_CMD),
        ("deps", [entry("model.bin", md5["model.bin"], size["model.bin"]),
                  entry("prepared", prepared_md5, prepared_size, prepared_n)]),
        ("outs", [entry("metrics.json", md5["metrics.json"], size["metrics.json"])]),
    ])
    data = OrderedDict([("schema", "2.0"), ("stages", stages)])
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.Representer.add_representer(OrderedDict, yaml.Representer.represent_dict)
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def cpp_string(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def yaml_fuzz(seed: int, count: int):
    """Random documents with the scalars that stress ruamel's style choice and line folding."""
    import random

    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.default_flow_style = False
    rnd = random.Random(seed)
    alphabet = list("abcdefghij xyz  -_:#'\"\\,[]{}&*!|>%@`?.~=<0123456789\t\n") + [
        "\u00e9", "\u00fc", "\U0001F600", "\u00a0", "\u2028", "\x85", "\x7f", "\x01", "\ufeff", "\u4e2d"]
    words = ["true", "false", "null", "yes", "no", "1.0", "2.0", "1e5", "0x1F", "0o7", "012", "-", "- a", ": b",
             "a: b", "#x", "x #y", "2001-01-01", "<<", "=", "~", ".inf", "", " ", "python train.py", "${x}", "it's"]

    def rstr():
        r = rnd.random()
        if r < 0.3:
            return rnd.choice(words)
        if r < 0.5:
            parts = ["ab", "cde", "x'y", "longerword", "a", "--flag=value", "\u00e9", "\\n"]
            return " ".join(rnd.choice(parts) + ("  " if rnd.random() < 0.05 else "")
                            for _ in range(rnd.randint(12, 50)))
        return "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 30)))

    def rscalar():
        r = rnd.random()
        if r < 0.6:
            return rstr()
        if r < 0.7:
            return rnd.randint(-10**6, 10**12)
        if r < 0.8:
            return rnd.choice([0.01, 1e-05, 1e16, 123.456, -0.5, 1.0, 3.14159e-10, 2.5e20, 100000.0])
        if r < 0.9:
            return rnd.choice([True, False])
        return None

    def rnode(depth):
        r = rnd.random()
        if depth > 3 or r < 0.5:
            return rscalar()
        if r < 0.75:
            return [rnode(depth + 1) for _ in range(rnd.randint(0, 4))]
        keys = ["path", "md5", "cmd", "params.yaml", "train.lr", "2.0", "a b"]
        return {(rstr() if rnd.random() < 0.3 else rnd.choice(keys) + str(i)): rnode(depth + 1)
                for i in range(rnd.randint(0, 4))}

    for i in range(count):
        doc = {"schema": "2.0", "stages": {"s%d" % i: rnode(0),
                                            "t": {"cmd": rstr(), "deps": [{"path": rstr(), "md5": "x"}]}}}
        out = io.StringIO()
        yaml.dump(doc, out)
        print(json.dumps([doc, out.getvalue()]))


def main():
    import sys

    if len(sys.argv) == 4 and sys.argv[1] == "--yaml-fuzz":
        yaml_fuzz(int(sys.argv[2]), int(sys.argv[3]))
        return
    print("// file")
    print("kKnownFileMd5 =", cpp_string(file_md5(KNOWN_FILE)))
    print("kCrlfMd5 =", cpp_string(file_md5(CRLF_FILE)))
    print("kCrlfDos2UnixMd5 =", cpp_string(dos2unix_md5(CRLF_FILE)))
    with tempfile.TemporaryDirectory() as tmp:
        write_tree(tmp, KNOWN_DIR, EMPTY_DIRS)
        md5, size, nfiles, obj = build_tree(tmp)
    print("// directory")
    print("kDirMd5 =", cpp_string(md5))
    print("kDirSize =", size)
    print("kDirNfiles =", nfiles)
    print("kDirObject =", cpp_string(obj.decode("ascii")))
    print("// empty directory")
    print("kEmptyDirMd5 =", cpp_string(hashlib.md5(json.dumps([], sort_keys=True).encode()).hexdigest() + ".dir"))
    print("// dvc.lock")
    print(lock_text())


if __name__ == "__main__":
    main()
