"""COCO: the ground-truth dataset dict and loadRes, as much of pycocotools.coco as guns_train.py uses."""
import copy


class COCO:
    def __init__(self, annotation_file=None):
        self.dataset = {}
        if annotation_file:
            import json
            with open(annotation_file) as f:
                self.dataset = json.load(f)

    def createIndex(self):
        self.imgs = {im["id"]: im for im in self.dataset.get("images", [])}

    def getImgIds(self):
        return sorted(self.imgs)

    def loadRes(self, results):
        res = COCO()
        res.dataset = {"images": copy.deepcopy(self.dataset.get("images", [])),
                       "categories": copy.deepcopy(self.dataset.get("categories", [])),
                       "annotations": list(results)}
        res.createIndex()
        return res
