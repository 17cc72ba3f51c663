"""Datasets by name: `get_dataset("fashion_mnist").load("train")`. Importing registers every loader."""

# Importing a loader module registers its datasets.
from lejepa.data import (  # noqa: F401
    cifar_stl,  # cifar10, cifar100, stl10
    fine_grained,  # flowers102, food101, oxford_pets, dtd, fgvc_aircraft, stanford_cars
    galaxy10,  # galaxy10_decals
    huggingface_sets,  # imagenet1k_hf
    imagefolder_sets,  # imagenet1k, imagenet100, imagenette
    mnist_like,  # fashion_mnist, digits
)
from lejepa.data.registry import DATASETS, DatasetInfo, DatasetNotFound, get_dataset, register_dataset

__all__ = ["DATASETS", "DatasetInfo", "DatasetNotFound", "get_dataset", "register_dataset"]
