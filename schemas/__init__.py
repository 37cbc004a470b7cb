"""Contracts shared by the data toolkit and the trainer: joint layouts, datasets, the store schema.

Imports nothing heavy and nothing else of ours.
"""
from schemas.layouts import LAYOUTS, Layout, get_layout, load_layout, resolve_layout

__all__ = ["LAYOUTS", "Layout", "get_layout", "load_layout", "resolve_layout"]
