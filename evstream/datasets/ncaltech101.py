"""N-Caltech101 (Orchard et al. 2015): ``Caltech101/<class>/image_NNNN.bin`` ATIS recordings."""

from __future__ import annotations

from evstream.datasets.base import EventClassificationDataset, Sample
from evstream.datasets.splits import split_per_class


class NCaltech101(EventClassificationDataset):
    """N-Caltech101 with the deterministic 9:1 split per class (files in name order).

    Classes are the class folders found, sorted (101 in the real set, BACKGROUND_Google and
    Faces_easy included); the root may be the folder holding ``Caltech101/`` or that folder.
    Events are 240x180 at most.
    """

    sensor_size = (240, 180, 2)
    layout = "  <root>/Caltech101/<class>/image_NNNN.bin  (or <root>/<class>/image_NNNN.bin), ATIS 40-bit records"

    def _find_samples(self):
        base = self.root / "Caltech101" if (self.root / "Caltech101").is_dir() else self.root
        self.classes = tuple(sorted(d.name for d in base.iterdir() if d.is_dir() and any(d.glob("*.bin"))))
        per_class = [sorted((base / name).glob("*.bin")) for name in self.classes]
        return [Sample(path, label) for label, path in split_per_class(per_class, self.split)]

    def _reader_options(self):
        return {"sensor_size": self.sensor_size}
