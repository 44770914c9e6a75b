"""Small shared helpers: counter-based randomness, atomic file output, images."""
