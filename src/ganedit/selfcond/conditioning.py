"""The self-conditioned GAN's additions to a StyleGAN2 training step (SC-GAN, B6).

Fakes get modes drawn with t ~ U(0, 1) per attribute: the generator is fed the vector with
its middle slots zeroed, and its mode head is asked to read the full vector back. The mode
loss is a per-sample KL divergence between each attribute's 3 target weights and the
softmax of its 3 logits, summed over attributes and averaged over the batch. (SC-GAN's code
uses `KLDivLoss(reduction='mean')`, which also averages over the 3 anchors: its md weights
count a third as much as ours.) Slot 0, the base mode, has a logit the loss never reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ganedit.models.modes import mode_vector


def mode_kl(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """KL(target || softmax(logits)) per attribute triple, summed over attributes, averaged
    over the batch: logits and targets [N, 1 + 3k] -> a scalar."""
    n, m = logits.shape
    k = (m - 1) // 3
    log_q = F.log_softmax(logits[:, 1:].reshape(n, k, 3), dim=-1)
    p = targets[:, 1:].reshape(n, k, 3)
    return (torch.xlogy(p, p) - p * log_q).sum((1, 2)).mean()


@dataclass
class ModeConditioning:
    """`training.gan.Conditioning` for k attributes' soft 3-anchor modes."""

    k: int
    d_weight: float = 0.5  # SC-GAN's README: md_d = md_g = 0.5
    g_weight: float = 0.5

    def sample(self, n: int, gen: torch.Generator, device) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.rand(n, self.k, generator=gen)
        return mode_vector(t, True).to(device), mode_vector(t, False).to(device)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return mode_kl(logits, targets)
