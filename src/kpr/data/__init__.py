"""Datasets: the built-in synthetic benchmark and on-disk dataset formats."""
