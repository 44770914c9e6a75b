"""Measurements: predictor quality now; disentanglement and identity preservation later."""
