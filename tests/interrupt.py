"""Interrupt a training run at a chosen step, as a kill would, to test that it resumes."""

from __future__ import annotations

import pytest

import ganedit.training.gan as gan_mod


def run_killed_at(monkeypatch, step: int, run) -> None:
    """Call `run()`, which trains a GAN, with its step `step` raising KeyboardInterrupt."""
    original = gan_mod.gan_step

    def crash(state, cfg, sampler):
        if state.step == step:
            raise KeyboardInterrupt
        return original(state, cfg, sampler)

    monkeypatch.setattr(gan_mod, "gan_step", crash)
    with pytest.raises(KeyboardInterrupt):
        run()
    monkeypatch.setattr(gan_mod, "gan_step", original)
