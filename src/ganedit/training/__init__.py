"""Training loops, built from small setup / step / maintenance pieces."""
