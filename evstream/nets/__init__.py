"""Spiking networks, built by name: ``evstream.nets.build("tasnn_gesture", time_steps=16)``.

Importing this package registers every builder in :data:`evstream.nets.registry.BUILDERS`.
"""

from evstream.nets import masnn, nmnist, sdt, ssnn, tasnn, trevsnn
from evstream.nets.masnn import ATTENTIONS, PLACEMENTS, masnn_cifar10dvs, masnn_gesture
from evstream.nets.depth import spiking_depth_unet, stereospike
from evstream.nets.nmnist import cnn_nmnist
from evstream.nets.registry import BUILDERS, build, builder, names, register
from evstream.nets.sdt import SDTOutput, SpikeDrivenTransformer, sdt_cifar10dvs, sdt_gesture, sdt_nmnist
from evstream.nets.spike_yolo import SpikeYOLO, spike_yolo
from evstream.nets.ssnn import SSNN, SSNNOutput, TemporalTransformer, ssnn_cifar10dvs, ssnn_gesture
from evstream.nets.trevsnn import TRevSNN, TRevSNNOutput, trevsnn_cifar10dvs, trevsnn_gesture
from evstream.nets.tasnn import ClassifierRun, SpikingClassifier, SpikingLayer, tasnn_cifar10dvs, tasnn_gesture

register("spiking_depth_unet")(spiking_depth_unet)
register("stereospike")(stereospike)

__all__ = ["ATTENTIONS", "BUILDERS", "ClassifierRun", "cnn_nmnist", "PLACEMENTS", "SSNN", "SSNNOutput", "SpikingClassifier",
           "SpikeYOLO", "SpikingLayer", "TemporalTransformer", "build", "builder", "masnn", "masnn_cifar10dvs", "masnn_gesture",
           "names", "nmnist", "register", "sdt", "SDTOutput", "SpikeDrivenTransformer", "sdt_cifar10dvs", "sdt_gesture",
           "sdt_nmnist", "spiking_depth_unet", "stereospike", "ssnn", "ssnn_cifar10dvs", "ssnn_gesture", "spike_yolo", "tasnn", "tasnn_cifar10dvs",
           "tasnn_gesture", "trevsnn", "TRevSNN", "TRevSNNOutput", "trevsnn_cifar10dvs", "trevsnn_gesture"]
