"""Dataset reading/validation, augmentation that moves points, and collate."""
from heatmaploc.data.augment import AugmentConfig, augment
from heatmaploc.data.dataset import HeatmapDataset, ImageSource, IndexSource, SampleStream, collate, make_sample
from heatmaploc.data.index import DatasetIndex, ImageRecord, load_dataset
from heatmaploc.data.io import read_image, read_meta, read_points_csv, write_image, write_points_csv
from heatmaploc.data.preprocess import normalize, to_unit_range

__all__ = [
    "AugmentConfig", "augment", "HeatmapDataset", "ImageSource", "IndexSource", "SampleStream", "collate", "make_sample",
    "DatasetIndex", "ImageRecord",
    "load_dataset", "read_image", "read_meta", "read_points_csv", "write_image", "write_points_csv",
    "normalize", "to_unit_range",
]
