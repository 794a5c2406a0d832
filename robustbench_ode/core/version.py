"""The package version: part of every cell key (a new version may change what a cell computes)."""

__version__ = "0.1.0"
