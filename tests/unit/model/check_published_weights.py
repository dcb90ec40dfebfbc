"""Checks vigil's table of published weights (src/model/published_weights.cpp) against the Weights enums of the
installed torchvision (python3-torchvision 0.14), so that the hand-copied table cannot drift.

Usage: check_published_weights.py TABLE.json

TABLE.json is written by tests/unit/model/published_weights_test.cpp from vigil's own table:
  {"base_url": "https://download.pytorch.org/models/",
   "zoo": ["mobilenet_v2", ...every architecture of vigil's zoo...],
   "weights": [{"arch": ..., "name": ..., "file": ..., "default": true|false}, ...]}

For every zoo architecture torchvision has a builder for, the table must hold exactly the enum's members (name and
URL = base_url + file) and mark the member the enum's DEFAULT points at; architectures torchvision does not
build must have no entries. Exit 0 when all matches, else every difference on stderr and exit 1.
"""
import json
import sys

import torchvision
from torchvision import models


def expected_for(arch):
    """{name: (url, is_default)} of torchvision's Weights enum for `arch`, or None without a builder."""
    if arch not in models.list_models():
        return None
    enum = models.get_model_weights(arch)
    return {w.name: (w.url, w is enum.DEFAULT) for w in enum}


def main(path):
    with open(path) as f:
        table = json.load(f)
    base = table["base_url"]
    have = {}
    for row in table["weights"]:
        have.setdefault(row["arch"], {})[row["name"]] = (base + row["file"], bool(row["default"]))
    problems = []
    for arch in sorted(set(have) - set(table["zoo"])):
        problems.append("{}: in the table but not in vigil's zoo".format(arch))
    for arch in table["zoo"]:
        expected = expected_for(arch)
        got = have.get(arch, {})
        if expected is None:
            if got:
                problems.append("{}: torchvision {} has no builder, yet the table lists {}".format(
                    arch, torchvision.__version__, sorted(got)))
            continue
        if got != expected:
            problems.append("{}: expected {}, got {}".format(arch, sorted(expected.items()), sorted(got.items())))
    for p in problems:
        print(p, file=sys.stderr)
    checked = sum(len(v) for v in have.values())
    print("{} weights of {} zoo architectures checked against torchvision {}: {}".format(
        checked, len(table["zoo"]), torchvision.__version__, "differences" if problems else "all match"))
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
