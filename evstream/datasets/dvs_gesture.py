"""DVS128 Gesture (IBM, Amir et al. 2017) in its original layout; also our synthetic gesture set."""

from __future__ import annotations

import csv

from evstream.datasets.base import EventClassificationDataset, Sample

GESTURE_CLASSES = ("hand clap", "right hand wave", "left hand wave", "right arm clockwise",
                   "right arm counter-clockwise", "left arm clockwise", "left arm counter-clockwise", "arm roll",
                   "air drums", "air guitar", "other")


def read_labels(path) -> list[tuple[int, int, int]]:
    """Rows ``(class 0-based, start_us, end_us)`` of a ``userXX_<lighting>_labels.csv`` (1-based classes)."""
    with open(path, newline="") as f:
        rows = [row for row in csv.reader(f) if row]
    if not rows or [c.strip() for c in rows[0]] != ["class", "startTime_usec", "endTime_usec"]:
        raise ValueError(f"{path}: expected the header 'class,startTime_usec,endTime_usec'")
    labels = []
    for row in rows[1:]:
        cls, start, end = (int(v) for v in row[:3])
        if not 1 <= cls <= len(GESTURE_CLASSES):
            raise ValueError(f"{path}: class {cls} is outside 1..{len(GESTURE_CLASSES)}")
        labels.append((cls - 1, start, end))
    return labels


class DVSGesture(EventClassificationDataset):
    """DVS128 Gesture: one sample per labelled window ``[start, end)`` of each trial, 11 classes.

    The split is the dataset's own: the trials listed in ``trials_to_train.txt`` (users 1-23)
    and ``trials_to_test.txt`` (users 24-29). Rows repeated in a labels file stay separate samples.
    """

    sensor_size = (128, 128, 2)
    classes = GESTURE_CLASSES
    layout = ("  <root>/trials_to_train.txt, <root>/trials_to_test.txt  (one userXX_<lighting>.aedat per line)\n"
              "  <root>/userXX_<lighting>.aedat                          (AEDAT 3.1)\n"
              "  <root>/userXX_<lighting>_labels.csv                     (class,startTime_usec,endTime_usec)")

    def _find_samples(self):
        listing = self.root / f"trials_to_{self.split}.txt"
        if not listing.exists():
            raise FileNotFoundError(f"DVSGesture: {listing} is missing; expected:\n{self.layout}")
        samples = []
        for name in listing.read_text().split():
            trial = self.root / name
            labels = trial.with_name(trial.stem + "_labels.csv")
            if not trial.exists() or not labels.exists():
                raise FileNotFoundError(f"DVSGesture: {listing} lists {name}, but {trial.name} or {labels.name} "
                                        f"is missing; expected:\n{self.layout}")
            samples += [Sample(trial, cls, start, end) for cls, start, end in read_labels(labels)]
        return samples

    def _source_files(self):
        trials = sorted({s.path for s in self.samples})
        return [self.root / f"trials_to_{self.split}.txt", *trials,
                *(t.with_name(t.stem + "_labels.csv") for t in trials)]
