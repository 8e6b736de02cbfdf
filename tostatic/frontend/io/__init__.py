"""Feeding a training loop: datasets, samplers, the single-process DataLoader."""
