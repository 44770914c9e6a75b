"""Stand-in measuring networks for the evaluation tests (tests/evaluation/): readings that
are simple functions of the pixels, so the answers can be planted."""

import numpy as np
import torch

from ganedit.world.config import BINARY_ATTRIBUTES


class MeanReader:
    """A stand-in evaluator: smile from the red channel's mean, yaw from the green's; the
    other attributes fixed. Features: the channel means."""

    attributes = BINARY_ATTRIBUTES

    def predict(self, images, batch_size=256):
        return self.embed_and_predict(images, batch_size)[1]

    def embed(self, images, batch_size=256):
        return self.embed_and_predict(images, batch_size)[0]

    def embed_and_predict(self, images, batch_size=256):
        means = torch.as_tensor(images).float().mean((2, 3)).numpy()  # [N, 3]
        pred = {a: np.full(len(means), 0.3) for a in BINARY_ATTRIBUTES}
        pred["smile"] = 1 / (1 + np.exp(-8 * means[:, 0]))
        pred["yaw"] = 60 * means[:, 1]
        return means, pred


class PixelIdentity:
    def embed(self, images, batch_size=256):
        flat = torch.as_tensor(images).float().flatten(1)
        return torch.nn.functional.normalize(flat, dim=1).numpy()
