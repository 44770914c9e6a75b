"""A planted linear 'generator world' for evaluation tests: the images are the latents.

Attribute a reads coordinate 0, b coordinate 1 (logits GAIN * x), yaw coordinate 2 (10
degrees per unit), identity coordinates 3..5; so the right answers are known exactly.
"""

import numpy as np
import torch

D = 6
GAIN = 3.0


class LinearSource:
    """Implements ganedit.models.sources.GeneratorSource (checked in test_direction_eval)."""

    name = "linear"
    spaces = ("z", "w")
    z_dim = D
    resolution = 1
    identity = {"name": "linear", "sha256": None}
    device = torch.device("cpu")

    def sample_z(self, n, seed, start=0):
        return torch.randn(start + n, D, generator=torch.Generator().manual_seed(seed))[start:]

    def to_w(self, z):
        return z

    def to_ws(self, latents, space):
        raise NotImplementedError("the linear world has no ws space")

    def synthesize(self, latents, space="w", batch_size=64, progress=False):
        return latents.reshape(len(latents), 1, 1, D).clone()


class LinearEvaluator(torch.nn.Module):
    attributes = ("a", "b")
    attribute_kinds = {"a": "probability", "b": "probability", "yaw": "value"}
    input_size = D

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))  # calibration reads the device from it

    def forward(self, images):
        x = images.reshape(len(images), D)
        return GAIN * x[:, :2], 10 * x[:, 2]

    @torch.no_grad()
    def predict(self, images, batch_size=256):
        logits, yaw = self(images)
        # float64: the logit read back from these (calibration) is exact far into saturation.
        probs = torch.sigmoid(logits.double()).numpy()
        return {"a": probs[:, 0], "b": probs[:, 1], "yaw": yaw.numpy()}


class LinearIdentity:
    """Attribute edits keep the identity; moves along coordinates 3..5 change it."""

    def embed(self, images, batch_size=256):
        x = images.reshape(len(images), D)[:, 3:].numpy() + 2.0
        return x / np.linalg.norm(x, axis=1, keepdims=True)


def unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


class LayeredSource(LinearSource):
    """The linear world with a ws space of two rows: the attributes read row 0's
    coordinates 0..2, the identity row 1's coordinates 3..5 (a direction moved only in
    row 0 cannot change the person)."""

    spaces = ("z", "w", "ws")
    num_ws = 2

    def to_ws(self, latents, space):
        return latents[:, None, :].expand(-1, self.num_ws, -1).clone()

    def synthesize(self, latents, space="w", batch_size=64, progress=False):
        ws = self.to_ws(latents, space) if space != "ws" else latents
        x = torch.cat([ws[:, 0, :3], ws[:, 1, 3:]], dim=1)
        return x.reshape(len(x), 1, 1, D).clone()
