"""CIFAR10-DVS (Li et al. 2017): class folders of jAER AEDAT 2.0 files recorded with a DVS128."""

from __future__ import annotations

import re

from evstream.datasets.base import EventClassificationDataset, Sample
from evstream.datasets.splits import split_per_class

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _number(path) -> tuple[int, str]:
    found = re.findall(r"\d+", path.stem)
    return (int(found[-1]) if found else -1, path.name)


class CIFAR10DVS(EventClassificationDataset):
    """CIFAR10-DVS with the deterministic 9:1 split per class (files sorted by their number: the
    first 90% train, the rest test, as TA-SNN's 0-899 / 900-999).

    Axes follow spikingjelly's convention for this dataset: ``x = 127 - y_raw``, ``y = 127 - x_raw``,
    ``p = 1 - p_raw`` (the recordings' sensor was rotated); the AEDAT 2.0 reader's DVS128 layout
    gives ``x = 127 - x_raw``, ``y = y_raw``, so the dataset maps ``(x, y) -> (127 - y, x)``.
    """

    sensor_size = (128, 128, 2)
    classes = CIFAR10_CLASSES
    layout = "  <root>/<class>/*.aedat  for the classes " + ", ".join(CIFAR10_CLASSES) + " (AEDAT 2.0, DVS128)"

    def _find_samples(self):
        per_class = [sorted(self.root.glob(f"{name}/*.aedat"), key=_number) for name in self.classes]
        return [Sample(path, label) for label, path in split_per_class(per_class, self.split)]

    def _reader_options(self):
        return {"chip": "DVS128"}

    def _convert(self, events):
        out = events.copy()
        out["x"] = 127 - events["y"]
        out["y"] = events["x"]
        return out

