"""torch ``Dataset``s of the neuromorphic datasets in their real on-disk layouts (no downloading)."""

from evstream.datasets.cifar10_dvs import CIFAR10DVS
from evstream.datasets.dvs_gesture import DVSGesture
from evstream.datasets.ncaltech101 import NCaltech101
from evstream.datasets.nmnist import NMNIST

__all__ = ["CIFAR10DVS", "DVSGesture", "NCaltech101", "NMNIST"]
