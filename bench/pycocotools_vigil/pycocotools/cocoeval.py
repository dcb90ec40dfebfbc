"""COCOeval (bbox): evaluate() writes the ground truth and the results as COCO JSON and runs `vigil evaluate
--gt --detections`; summarize() prints its table; stats holds the twelve numbers in pycocotools' order."""
import json
import os
import subprocess
import tempfile

KEYS = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


class COCOeval:
    def __init__(self, cocoGt=None, cocoDt=None, iouType="bbox"):
        if iouType != "bbox":
            raise ValueError("pycocotools_vigil evaluates boxes only, got iouType=%r" % iouType)
        self.cocoGt, self.cocoDt = cocoGt, cocoDt
        self.stats = [0.0] * len(KEYS)
        self._table = ""

    def evaluate(self):
        vigil = os.environ.get("VIGIL_BIN", "vigil")
        with tempfile.TemporaryDirectory() as tmp:
            gt, dt, out = (os.path.join(tmp, n) for n in ("gt.json", "dt.json", "out"))
            with open(gt, "w") as f:
                json.dump(self.cocoGt.dataset, f)
            with open(dt, "w") as f:
                json.dump(self.cocoDt.dataset["annotations"], f)
            run = subprocess.run([vigil, "--workspace", os.path.join(tmp, "ws"), "evaluate", "--gt", gt,
                                  "--detections", dt, "--out", out, "--no-track"],
                                 capture_output=True, text=True)
            if run.returncode != 0:
                raise RuntimeError("vigil evaluate failed (%d): %s" % (run.returncode, run.stderr))
            with open(os.path.join(out, "metrics.json")) as f:
                metrics = json.load(f)
            self.stats = [float(metrics["coco/" + k]) for k in KEYS]
            self._table = run.stdout

    def accumulate(self):
        pass

    def summarize(self):
        print(self._table)
