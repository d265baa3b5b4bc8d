"""Inference backends and prediction."""
