"""Reference outputs of Faster R-CNN's parts for tests/parity/detection_parts_test.cpp, from torchvision 0.14
(Debian's python3-torchvision): GeneralizedRCNNTransform, the ResNet-50 and MobileNetV3-Large FPN backbones,
AnchorGenerator and RegionProposalNetwork.

Usage: gen_detection_parts.py OUT_DIR

Writes (tensors via tensor_io.save_tensors, weights via torch.save of a state_dict):
  transform/          three images of different sizes and aspect ratios with boxes, the eval-mode batch,
                      image sizes and resized boxes; a train-mode run with several min sizes under a fixed seed
  {resnet50,mobilenet_v3}_fpn.pth   the backbones' state_dicts (body.*, fpn.*), as in fasterrcnn_*_fpn
  features/           the backbones' input batch and their FPN outputs
  {resnet50,mobilenet_v3}_rpn.pth   RPN state_dicts (head.*)
  rpn_{resnet50,mobilenet_v3}/      anchors, eval-mode proposals and scores, and the losses for given targets

Random weights give near-constant outputs (DESIGN.md section 6), so batch-norm statistics are calibrated on
image-like inputs first (train mode, momentum=None, a few batches, then eval) and the RPN's objectness weights
are scaled and shifted so proposal scores differ clearly.
"""
import os
import sys

import torch
from torch import nn
from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn, fasterrcnn_resnet50_fpn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import concat_box_prediction_layers, RegionProposalNetwork, RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_classifiers import image_like  # noqa: E402
from tensor_io import save_tensors  # noqa: E402

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
# Transform case: min/max sizes small enough for a quick test; sizes {h, w} of different aspect ratios.
MIN_SIZE, MAX_SIZE = 320, 512
TRANSFORM_SIZES = [(240, 320), (300, 200), (180, 500)]
TRAIN_MIN_SIZES = (256, 288, 320)
TRAIN_SEED = 1234
# Backbone input: two images padded to 320x416, with their sizes before padding.
BATCH_HW = (320, 416)
IMAGE_SIZES = [(320, 400), (300, 416)]
TARGETS = [
    [[20.0, 30.0, 120.0, 200.0], [200.0, 40.0, 390.0, 150.0], [50.0, 220.0, 90.0, 300.0]],
    [[10.0, 10.0, 400.0, 290.0], [150.0, 100.0, 230.0, 170.0]],
]
RPN_CASES = {
    # name: anchor sizes, score_thresh (fasterrcnn_resnet50_fpn / fasterrcnn_mobilenet_v3_large_fpn defaults)
    "resnet50": (((32,), (64,), (128,), (256,), (512,)), 0.0),
    "mobilenet_v3": (((32, 64, 128, 256, 512),) * 3, 0.05),
}


def random_boxes(h, w, n, gen):
    xy = torch.rand(n, 2, generator=gen) * torch.tensor([w * 0.6, h * 0.6])
    wh = torch.rand(n, 2, generator=gen) * torch.tensor([w * 0.4, h * 0.4]) + 4
    return torch.cat([xy, xy + wh], 1)


def make_transform(out_dir):
    gen = torch.Generator().manual_seed(7)
    images = [image_like(1, h, w, normalize=False)[0] for h, w in TRANSFORM_SIZES]
    boxes = [random_boxes(h, w, 3, gen) for h, w in TRANSFORM_SIZES]
    t = GeneralizedRCNNTransform(MIN_SIZE, MAX_SIZE, MEAN, STD).eval()
    targets = [{"boxes": b.clone(), "labels": torch.ones(3, dtype=torch.int64)} for b in boxes]
    image_list, resized = t(images, targets)
    out = {"tensors": image_list.tensors, "image_sizes": torch.tensor(image_list.image_sizes)}
    for i, (image, b, r) in enumerate(zip(images, boxes, resized)):
        out[f"image{i}"] = image
        out[f"boxes{i}"] = b
        out[f"resized_boxes{i}"] = r["boxes"]
    # Training draws one min size per image from the default generator.
    train = GeneralizedRCNNTransform(TRAIN_MIN_SIZES, MAX_SIZE, MEAN, STD).train()
    torch.manual_seed(TRAIN_SEED)
    train_list, _ = train(images, None)
    out["train_tensors"] = train_list.tensors
    out["train_image_sizes"] = torch.tensor(train_list.image_sizes)
    print(f"transform: eval sizes {image_list.image_sizes}, train sizes {train_list.image_sizes}")
    save_tensors(os.path.join(out_dir, "transform"), out)


def calibrate(backbone):
    backbone.train()
    for m in backbone.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = None
    with torch.no_grad():
        for _ in range(3):
            backbone(image_like(2, *BATCH_HW))
    backbone.eval()


def make_backbones(out_dir):
    torch.manual_seed(1)
    backbones = {
        "resnet50": fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None).backbone,
        "mobilenet_v3": fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None).backbone,
    }
    x = image_like(2, *BATCH_HW)
    out = {"input": x}
    features = {}
    for name, backbone in backbones.items():
        calibrate(backbone)
        with torch.no_grad():
            features[name] = backbone(x)
        for level, f in features[name].items():
            out[f"{name}.{level}"] = f
        print(f"{name}: levels {[(k, tuple(v.shape)) for k, v in features[name].items()]}")
        torch.save(backbone.state_dict(), os.path.join(out_dir, f"{name}_fpn.pth"))
    save_tensors(os.path.join(out_dir, "features"), out)
    return x, features


def make_rpn(out_dir, name, x, features):
    sizes, score_thresh = RPN_CASES[name]
    anchor_generator = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))
    torch.manual_seed(2)
    head = RPNHead(256, anchor_generator.num_anchors_per_location()[0])
    with torch.no_grad():
        # Logits with a spread of 2, shifted so the top few percent (the proposals) sit in sigmoid's steep part
        # and not saturated near 1, where float32 scores would tie.
        logits = torch.cat([o.flatten() for o in head(list(features.values()))[0]])
        head.cls_logits.weight.mul_(2.0 / logits.std())
        logits = torch.cat([o.flatten() for o in head(list(features.values()))[0]])
        head.cls_logits.bias.fill_(-torch.quantile(logits, 0.97).item())
        head.bbox_pred.weight.mul_(5.0)
    # batch_size_per_image covers every anchor, so sampling keeps all of them and the loss is deterministic.
    rpn = RegionProposalNetwork(anchor_generator, head, 0.7, 0.3, 10**6, 0.5, {"training": 1000, "testing": 1000},
                                {"training": 1000, "testing": 1000}, 0.7, score_thresh)
    images = ImageList(x, IMAGE_SIZES)
    targets = [{"boxes": torch.tensor(t), "labels": torch.ones(len(t), dtype=torch.int64)} for t in TARGETS]
    out = {}
    with torch.no_grad():
        rpn.eval()
        boxes, _ = rpn(images, features)
        # Scores are not returned by forward(); recompute them along the same path.
        maps = list(features.values())
        objectness, deltas = rpn.head(maps)
        anchors = rpn.anchor_generator(images, maps)
        per_level = [o[0].shape[0] * o[0].shape[1] * o[0].shape[2] for o in objectness]
        objectness, deltas = concat_box_prediction_layers(objectness, deltas)
        proposals = rpn.box_coder.decode(deltas, anchors).view(len(anchors), -1, 4)
        boxes2, scores = rpn.filter_proposals(proposals, objectness, images.image_sizes, per_level)
        rpn.train()
        _, losses = rpn(images, features, targets)
    for i in range(len(boxes)):
        assert torch.equal(boxes[i], boxes2[i])
        out[f"anchors{i}"] = anchors[i]
        out[f"proposals{i}"] = boxes[i]
        out[f"scores{i}"] = scores[i]
        out[f"targets{i}"] = targets[i]["boxes"]
        gaps = scores[i].sort(descending=True).values.diff().abs()
        print(f"rpn {name} image {i}: {len(boxes[i])} proposals, score range "
              f"[{scores[i].min().item():.4f}, {scores[i].max().item():.4f}], min gap {gaps.min().item():.2e}")
    out["loss_objectness"] = losses["loss_objectness"]
    out["loss_rpn_box_reg"] = losses["loss_rpn_box_reg"]
    print(f"rpn {name} losses: {[(k, round(v.item(), 6)) for k, v in losses.items()]}")
    torch.save(rpn.state_dict(), os.path.join(out_dir, f"{name}_rpn.pth"))
    save_tensors(os.path.join(out_dir, f"rpn_{name}"), out)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    make_transform(out_dir)
    x, features = make_backbones(out_dir)
    for name in RPN_CASES:
        make_rpn(out_dir, name, x, features[name])


if __name__ == "__main__":
    main()
