"""Editing latents along directions."""
