"""Pruning spiking nets: lottery tickets with weight rewinding (``evstream prune``).

* :class:`Masks`: keep-masks of conv and linear weights, held through training, stored with checkpoints.
* :func:`magnitude_scores`, :func:`probabilistic_scores`: the two criteria (:mod:`evstream.prune.criteria`).
* :func:`find_tickets`: the dense run and the iterative prune-rewind-retrain rounds.
"""

from evstream.prune.criteria import CRITERIA, magnitude_scores, membrane_potentials, probabilistic_scores
from evstream.prune.lottery import find_tickets
from evstream.prune.masks import Masks, prunable_weights

__all__ = ["CRITERIA", "Masks", "find_tickets", "magnitude_scores", "membrane_potentials", "probabilistic_scores",
           "prunable_weights"]
