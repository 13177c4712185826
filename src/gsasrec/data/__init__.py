"""Dataset folders: reading, validating and (for recipes) writing them."""

from gsasrec.data.folder import Dataset, Sequences, Split, read_dataset, resolve_datasets_dir

__all__ = ["Dataset", "Sequences", "Split", "read_dataset", "resolve_datasets_dir"]
