"""Independent re-count of the accident data's clips for tests/unit/data/clips_test.cpp (SharedData tests).

Usage: accident_clip_counts.py [DATASET_DIR]   (default ../shared/datasets/accidents from the repository root)

Groups the frames as vigil::data::group_clips does by default: the stem pattern ^(.+?)[_ ]\\(?(\\d+)\\)?$ gives
the clip id and frame number, train/ and val/ are pooled (or kept apart), frames are ordered by number, a clip is
cut into segments where the label changes, and each segment into windows of T frames every `stride` frames
(shorter segments dropped). Prints the counts the C++ test expects.
"""
import collections
import os
import re
import sys

PATTERN = re.compile(r"^(.+?)[_ ]\(?(\d+)\)?$")


def count(root, separate_split_folders=False, t=8, stride=8):
    clips = collections.defaultdict(list)
    for split in sorted(os.listdir(root)):
        if not os.path.isdir(os.path.join(root, split)):
            continue
        for label in sorted(os.listdir(os.path.join(root, split))):
            for name in os.listdir(os.path.join(root, split, label)):
                m = PATTERN.match(os.path.splitext(name)[0])
                key = (split + "/" if separate_split_folders else "") + m.group(1)
                clips[key].append((int(m.group(2)), label))
    segments = []
    for key, frames in clips.items():
        frames.sort()
        assert len({n for n, _ in frames}) == len(frames), f"duplicate frame numbers in {key}"
        current = None
        for _, label in frames:
            if label != current:
                segments.append([key, label, 0])
                current = label
            segments[-1][2] += 1
    windows = collections.Counter()
    short = dropped = unused = 0
    for _, label, n in segments:
        if n < t:
            short, dropped = short + 1, dropped + n
            continue
        k = (n - t) // stride + 1
        windows[label] += k
        unused += n - ((k - 1) * stride + t)
    changing = sum(1 for key in clips if sum(1 for s in segments if s[0] == key) > 1)
    return dict(clips=len(clips), clips_changing_label=changing, segments=len(segments),
                windows=sum(windows.values()), windows_per_label=dict(windows), short_segments=short,
                dropped_frames=dropped, unused_frames=unused)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "..", "..", "shared", "datasets",
                                                              "accidents")
    for kwargs in [{}, {"stride": 4}, {"t": 4, "stride": 4}, {"separate_split_folders": True}]:
        print(kwargs, count(root, **kwargs))


if __name__ == "__main__":
    main()
