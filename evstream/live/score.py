"""Running accuracy of a classifier over a labelled playlist (ground truth from the source).

Each sample is one window sequence (a playlist's file); its prediction is the class of the last
window the model saw in it (the partial last window covers the whole sample when the model's
window is as long as the recording, as N-MNIST's is). A sample is scored when the next sequence
starts, or by :meth:`PlaylistScore.finish` at the end. A folder name matches a class name equal to
it or, in tonic's ``"<label> - <name>"`` style (N-MNIST's ``"3 - three"``), its part before ``" - "``;
a sample whose folder names none of the model's classes (a folder of recordings sorted by format, say)
is not scored but counted in ``unscored``, so a running accuracy never counts what has no ground truth.
"""

from __future__ import annotations

import numpy as np

from evstream.outputs import Classification


class PlaylistScore:
    """``update(result)`` with every :class:`~evstream.live.pipeline.WindowResult`; ``top1`` so far."""

    def __init__(self):
        self.samples = 0
        self.correct = 0
        self.unscored = 0
        self.last: tuple[str, str] | None = None  # (truth, prediction) of the sample scored last
        self._open: tuple[int, str, str] | None = None  # (sequence, truth, prediction) of the sample playing

    def update(self, result) -> None:
        output = result.output
        if result.label is None or not isinstance(output, Classification) or not len(output.probabilities):
            return
        if self._open is not None and self._open[0] != result.sequence:
            self._score()
        predicted = output.names[int(np.argmax(output.probabilities))]
        self._open = (result.sequence, result.label, predicted, _names_class(result.label, output.names))

    def finish(self) -> None:
        """Score the sample still open (the playlist's end)."""
        if self._open is not None:
            self._score()

    def _score(self) -> None:
        _, truth, predicted, known = self._open
        self._open = None
        if not known:
            self.unscored += 1
            return
        self.samples += 1
        self.correct += truth in (predicted, predicted.split(" - ", 1)[0])
        self.last, self._open = (truth, predicted), None

    @property
    def top1(self) -> float | None:
        """Fraction of scored samples predicted right (None before the first)."""
        return self.correct / self.samples if self.samples else None

    def summary(self) -> dict:
        return {"samples": self.samples, "correct": self.correct, "top1": self.top1, "unscored": self.unscored}


def _names_class(label: str, names: tuple[str, ...]) -> bool:
    """Whether a folder name is one of the class names (or a tonic-style name's label part)."""
    return any(label in (name, name.split(" - ", 1)[0]) for name in names)
