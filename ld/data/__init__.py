"""Datasets: the embedded generated dataset."""
