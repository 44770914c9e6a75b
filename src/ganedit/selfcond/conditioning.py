"""The self-conditioned GAN's additions to a StyleGAN2 training step (SC-GAN, B6).

Fakes get modes drawn with t ~ U(0, 1) per attribute: the generator is fed the vector with
its middle slots zeroed, and its mode head is asked to read the full vector back. The mode
loss is a per-sample KL divergence between each attribute's 3 target weights and the
softmax of its 3 logits, summed over attributes and averaged over the batch. (SC-GAN's code
uses `KLDivLoss(reduction='mean')`, which also averages over the 3 anchors: its md weights
count a third as much as ours.) Slot 0, the base mode, has a logit the loss never reads.

With `twin=True` (TAC-GAN, Gong et al. 2019) a second mode head on the discriminator learns
to read the modes the fakes were drawn with, and the generator's mode term becomes the
first head's KL minus the twin's. The plain term (AC-GAN's) also rewards fakes whose modes
are easy to read, which a generator gets by drawing one prototype per mode; the twin's term
cancels that reward and leaves the match of the conditional distributions (issue 28: the
plain term collapsed world64-sc to one face per mode).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ganedit.models.modes import ModeLayout


def mode_kl(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """KL(target || softmax(logits)) per attribute triple, summed over attributes, averaged
    over the batch: logits and targets [N, 1 + 3k] -> a scalar."""
    layout = ModeLayout.of_width(logits.shape[1])
    log_q = F.log_softmax(layout.triples(logits), dim=-1)
    p = layout.triples(targets)
    return (torch.xlogy(p, p) - p * log_q).sum((1, 2)).mean()


@dataclass
class ModeConditioning:
    """`training.gan.Conditioning` for k attributes' soft 3-anchor modes."""

    k: int
    d_weight: float = 0.5  # SC-GAN's README: md_d = md_g = 0.5
    g_weight: float = 0.5
    # Share of each fake's attributes drawn at exactly neutral (t = 1/2: the base constant
    # alone) instead of U(0, 1). Uniform draws almost never feed the neutral mode, where edits
    # start and `--mode A=T` leaves the other attributes, so it goes untrained (issue 28).
    neutral_share: float = 0.0
    twin: bool = False  # TAC-GAN's twin mode head on fakes (module docstring)
    # Coordinates [P, k] the fakes' modes are drawn from, a row each (the real images' modes
    # as the batches draw them); None: t ~ U(0, 1) per attribute (SC-GAN). Uniform draws put
    # binary attributes mostly between their classes, where no real image is.
    pool: torch.Tensor | None = None

    def sample(self, n: int, gen: torch.Generator, device) -> tuple[torch.Tensor, torch.Tensor]:
        layout = ModeLayout.unnamed(self.k)
        if self.pool is None:
            t = torch.rand(n, self.k, generator=gen)
        else:
            t = self.pool[torch.randint(len(self.pool), (n,), generator=gen)]
        if self.neutral_share > 0:  # a second draw only then: earlier runs resume unchanged
            t = torch.where(torch.rand(n, self.k, generator=gen) < self.neutral_share, 0.5, t)
        return layout.generator_vector(t).to(device), layout.target_vector(t).to(device)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return mode_kl(logits, targets)
