"""skeltools' training backend: models (``trainer.models``), data, training loop, evaluation and ensembling.

Importing this package is cheap; the submodules import torch.
"""
