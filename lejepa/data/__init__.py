"""Datasets by name: `get_dataset("fashion_mnist").load("train")`. Importing registers every loader."""

from lejepa.data import mnist_like  # noqa: F401  (registers fashion_mnist, digits)
from lejepa.data.registry import DATASETS, DatasetInfo, DatasetNotFound, get_dataset, register_dataset

__all__ = ["DATASETS", "DatasetInfo", "DatasetNotFound", "get_dataset", "register_dataset"]
