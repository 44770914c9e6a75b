"""Self-conditioned GANs (SC-GAN): self-labels from latent distances, re-sampling toward a
balanced joint distribution, a generator whose input constant is a mixture of per-mode
constants, and editing by modes."""
