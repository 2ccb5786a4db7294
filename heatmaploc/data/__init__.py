"""Dataset reading/validation, augmentation that moves points, and collate.

The torch datasets (:mod:`heatmaploc.data.dataset`) are imported on first use, so
reading images and datasets needs no torch."""
from heatmaploc.data.augment import AugmentConfig, augment
from heatmaploc.data.index import DatasetIndex, ImageRecord, load_dataset
from heatmaploc.data.io import read_image, read_meta, read_points_csv, write_image, write_points_csv
from heatmaploc.data.preprocess import normalize, to_unit_range

_TORCH_DATASET = ("HeatmapDataset", "ImageSource", "IndexSource", "SampleStream", "collate", "make_sample")


def __getattr__(name: str):
    if name in _TORCH_DATASET:
        from heatmaploc.data import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module 'heatmaploc.data' has no attribute {name!r}")


__all__ = [
    "AugmentConfig", "augment", *_TORCH_DATASET, "DatasetIndex", "ImageRecord",
    "load_dataset", "read_image", "read_meta", "read_points_csv", "write_image", "write_points_csv",
    "normalize", "to_unit_range",
]
