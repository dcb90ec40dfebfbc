"""A stand-in for pycocotools' COCO / COCOeval (bbox only) that evaluates with `vigil evaluate --gt --detections`,
whose twelve numbers equal pycocotools' (tests/parity, bench/eval.sh). Debian 12 packages no pycocotools and this
machine has no pip index; bench/train_quality.sh puts this folder on PYCOCO_PATH so the seeds' guns_train.py runs
unchanged. Set VIGIL_BIN to the vigil binary. Benchmarks only: never on a user's path."""
