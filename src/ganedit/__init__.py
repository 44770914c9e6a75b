"""ganedit: controllable editing of pretrained GANs."""

__version__ = "0.1.0"
__all__ = ["__version__"]
