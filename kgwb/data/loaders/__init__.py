"""Loaders for real data formats, each returning a canonical Dataset."""
