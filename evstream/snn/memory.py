"""Peak bytes of the activations autograd keeps for backward, counted without the allocator.

:class:`SavedTensorMeter` installs ``torch.autograd.graph.saved_tensors_hooks``: every tensor a
graph saves (forward, and the recomputation inside a custom ``backward``) is counted by its storage
(views and repeats of one storage count once) until autograd drops it; parameters are not counted
(they stay resident whatever the training method). ``peak_bytes`` is the most held at once: the
activation memory of a training step on any device, CPU included, where the allocator offers no
such counter.
"""

from __future__ import annotations

import weakref

import torch
from torch import nn

__all__ = ["SavedTensorMeter"]


class _Packed:
    """What the pack hook hands autograd: the tensor, and a finaliser releasing its count."""

    __slots__ = ("tensor", "__weakref__")

    def __init__(self, tensor: torch.Tensor):
        self.tensor = tensor


class SavedTensorMeter:
    """Context manager: ``current_bytes`` and ``peak_bytes`` of the tensors saved for backward inside it.

    Example:
        >>> with SavedTensorMeter() as meter:  # doctest: +SKIP
        ...     loss = model(x).sum(); loss.backward()
        >>> meter.peak_bytes  # doctest: +SKIP
    """

    def __init__(self):
        self.current_bytes = 0
        self.peak_bytes = 0
        self._live: dict[int, list[int]] = {}  # storage address -> [bytes, references]
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)

    def _pack(self, tensor: torch.Tensor):
        if isinstance(tensor, nn.Parameter):
            return tensor
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        entry = self._live.get(key)
        if entry is None:
            self._live[key] = [storage.nbytes(), 1]
            self.current_bytes += storage.nbytes()
            self.peak_bytes = max(self.peak_bytes, self.current_bytes)
        else:
            entry[1] += 1
        packed = _Packed(tensor)
        weakref.finalize(packed, self._release, key)
        return packed

    @staticmethod
    def _unpack(packed):
        return packed.tensor if isinstance(packed, _Packed) else packed

    def _release(self, key: int) -> None:
        entry = self._live.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.current_bytes -= entry[0]
            del self._live[key]

    def __enter__(self) -> "SavedTensorMeter":
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)
