"""skeltools: skeleton action-recognition datasets as fast, self-describing zarr v3 stores."""
__version__ = "0.1.0"
