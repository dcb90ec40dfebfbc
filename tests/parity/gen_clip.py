"""Reference outputs for tests/parity/clip_test.cpp: vigil::nn::ClipClassifier (CNN per frame + LSTM/GRU over
time) against torch.nn.LSTM / torch.nn.GRU from Debian's python3-torch, on the same weights.

Usage: gen_clip.py OUT_DIR [CASE ...]   (default: every case in CASES)

For each case, OUT_DIR/<case>/config.json holds the options, OUT_DIR/<case>/state the state_dict of the reference
module ClipClassifier below (keys backbone.*, rnn.weight_ih_l0 ..., fc.*: the names vigil's module uses), and
OUT_DIR/<case>/io the input clips [B, T, 3, H, W], the per-frame backbone features [B, T, F] and the eval-mode
logits [B, classes].

As DESIGN.md section 6 asks, the backbone's batch-norm statistics are calibrated on image-like frames first
(train mode, momentum=None, no_grad), and the recurrent input weights are scaled so the gates are not saturated
(otherwise every clip gives the same hidden state and a comparison proves little); fc is scaled so the logits
spread. The generator prints the logits' spread per case.
"""
import json
import os
import sys

import torch
import torchvision
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_classifiers import MaskSmallCnn, image_like  # noqa: E402
from tensor_io import save_tensors  # noqa: E402

# name: backbone, rnn, hidden, layers, bidirectional, pooling, classes, (B, T, H, W)
CASES = {
    "mv3s_lstm": ("mobilenet_v3_small", "lstm", 32, 1, False, "last", 3, (2, 5, 64, 64)),
    "mv3s_lstm_2layer_bidirectional": ("mobilenet_v3_small", "lstm", 32, 2, True, "last", 3, (2, 5, 64, 64)),
    "mv3s_gru": ("mobilenet_v3_small", "gru", 32, 1, False, "last", 2, (3, 4, 64, 64)),
    "mv3s_gru_2layer_bidirectional_mean": ("mobilenet_v3_small", "gru", 24, 2, True, "mean", 4, (2, 6, 64, 64)),
    "mv2_lstm_bidirectional": ("mobilenet_v2", "lstm", 16, 1, True, "last", 2, (2, 3, 64, 64)),
    "r18_gru_2layer_mean": ("resnet18", "gru", 16, 2, False, "mean", 2, (2, 3, 64, 64)),
    "mask_lstm_bidirectional": ("mask_small_cnn", "lstm", 16, 1, True, "last", 2, (2, 3, 100, 100)),
}


class PooledFeatures(nn.Module):
    """A MobileNet's `features` followed by global average pooling: torchvision's classifier input."""

    def __init__(self, model):
        super().__init__()
        self.features = model.features

    def forward(self, x):
        return torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1)


def make_backbone(arch):
    """The backbone without its head, and its feature width (names match vigil's backbone.*)."""
    if arch.startswith("mobilenet"):
        model = getattr(torchvision.models, arch)(weights=None)
        width = model.features[-1].out_channels
        return PooledFeatures(model), width
    if arch.startswith("resnet"):
        model = getattr(torchvision.models, arch)(weights=None)
        width = model.fc.in_features
        model.fc = nn.Identity()
        return model, width
    assert arch == "mask_small_cnn"
    model = MaskSmallCnn()
    model.classifier = nn.Sequential(*list(model.classifier.children())[:3])  # Linear, BatchNorm1d, ReLU
    return model, 256


class ClipClassifier(nn.Module):
    """What vigil::nn::ClipClassifier computes (include/vigil/nn/classification/clip_classifier.h)."""

    def __init__(self, arch, rnn, hidden, layers, bidirectional, pooling, classes):
        super().__init__()
        self.backbone, width = make_backbone(arch)
        kind = nn.LSTM if rnn == "lstm" else nn.GRU
        self.rnn = kind(width, hidden, num_layers=layers, batch_first=True, bidirectional=bidirectional)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(hidden * (2 if bidirectional else 1), classes)
        self.layers, self.directions, self.hidden, self.pooling = layers, 2 if bidirectional else 1, hidden, pooling

    def frame_features(self, clips):
        b, t = clips.shape[:2]
        return self.backbone(clips.flatten(0, 1)).view(b, t, -1)

    def classify_features(self, features):
        out, state = self.rnn(features)
        h = state[0] if isinstance(self.rnn, nn.LSTM) else state
        if self.pooling == "mean":
            pooled = out.mean(1)
        else:
            b = features.shape[0]
            pooled = h.view(self.layers, self.directions, b, self.hidden)[-1].transpose(0, 1).reshape(b, -1)
        return self.fc(self.dropout(pooled))

    def forward(self, clips):
        return self.classify_features(self.frame_features(clips))


def make_case(out_dir, name, config, seed):
    arch, rnn, hidden, layers, bidirectional, pooling, classes, (b, t, h, w) = config
    torch.manual_seed(seed)
    model = ClipClassifier(arch, rnn, hidden, layers, bidirectional, pooling, classes)
    normalize = arch != "mask_small_cnn"
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = None
    with torch.no_grad():
        for _ in range(3):
            model.backbone(image_like(8, h, w, normalize))
        model.eval()
        # Unsaturated gates: scale the input weights so pre-activations have a spread of about one.
        feats = model.frame_features(image_like(b * t, h, w, normalize).view(b, t, 3, h, w))
        for k in range(layers):
            for suffix in ["", "_reverse"] if bidirectional else [""]:
                weight = getattr(model.rnn, f"weight_ih_l{k}{suffix}")
                inputs = feats if k == 0 else torch.randn(b, t, weight.shape[1]) * 0.5
                spread = (inputs.flatten(0, 1) @ weight.t()).std().item()
                weight.mul_(1.0 / max(spread, 1e-6))
        model.fc.weight.mul_(4.0)
        clips = image_like(b * t, h, w, normalize).view(b, t, 3, h, w)
        features = model.frame_features(clips)
        logits = model.classify_features(features)
    print(f"{name}: clips {tuple(clips.shape)} features {tuple(features.shape)} logits {tuple(logits.shape)} "
          f"std {logits.std().item():.4f}")
    case_dir = os.path.join(out_dir, name)
    os.makedirs(case_dir, exist_ok=True)
    with open(os.path.join(case_dir, "config.json"), "w") as f:
        json.dump(dict(backbone=arch, rnn=rnn, hidden_size=hidden, num_layers=layers, bidirectional=bidirectional,
                       pooling=pooling, num_classes=classes), f, indent=1)
    save_tensors(os.path.join(case_dir, "state"), model.state_dict())
    save_tensors(os.path.join(case_dir, "io"), {"clips": clips, "features": features, "logits": logits})


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out_dir = sys.argv[1]
    wanted = sys.argv[2:]
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    for k, (name, config) in enumerate(CASES.items()):
        if not wanted or name in wanted:
            make_case(out_dir, name, config, seed=k + 1)


if __name__ == "__main__":
    main()
