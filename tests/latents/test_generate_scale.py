"""`generate` at a resolution far above the predictor's: one batch of images at a time, and
images resized for the predictor inside the batch only when it declares `resizes_to`."""

import weakref

import numpy as np
import pytest
import torch

import ganedit.latents.generate as gen_mod
from ganedit.errors import UserInputError
from ganedit.latents import GenerateConfig, LatentBank, generate_bank
from ganedit.models.foreign_predictors import CheckedPredictor
from ganedit.models.predictors import AttributeNet
from ganedit.models.sources import StyleGANSource
from ganedit.models.stylegan2 import Generator
from ganedit.utils.context import RunContext

QUIET = RunContext(progress=False)

RESOLUTION = 256


class Tracker:
    """Weak references to every batch of images `generate` renders (never the images)."""

    def __init__(self):
        self.rendered: list[weakref.ref] = []

    def alive(self) -> list[torch.Tensor]:
        return [t for t in (r() for r in self.rendered) if t is not None]


@pytest.fixture
def tracker(monkeypatch):
    tracker, real = Tracker(), gen_mod.render_batch

    def spy(source, latents, space, modes=None):
        images = real(source, latents, space, modes)
        tracker.rendered.append(weakref.ref(images))
        return images

    monkeypatch.setattr(gen_mod, "render_batch", spy)
    return tracker


class RecordingPredictor:
    """bald (a probability) and pose (a value); records what each call receives and how many
    rendered batches are still alive at that moment."""

    attribute_kinds = {"bald": "probability", "pose": "value"}
    input_size = 16

    def __init__(self, tracker: Tracker, resizes_to: int | None = None):
        self.tracker = tracker
        if resizes_to is not None:
            self.resizes_to = resizes_to
        self.calls: list[tuple[int, ...]] = []
        self.alive_batches: list[int] = []
        self.alive_bytes: list[int] = []

    def predict(self, images, batch_size=256):
        alive = self.tracker.alive()
        self.calls.append(tuple(images.shape))
        self.alive_batches.append(len(alive))
        self.alive_bytes.append(sum(t.numel() * t.element_size() for t in alive))
        w = images.shape[-1]
        bald = torch.sigmoid(4 * images.mean(dim=(1, 2, 3)))
        pose = 10 * (
            images[..., : w // 2].mean(dim=(1, 2, 3)) - images[..., w // 2 :].mean((1, 2, 3))
        )
        return {"bald": bald.numpy(), "pose": pose.numpy()}


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    g = Generator(RESOLUTION, style_dim=8, n_mlp=1, channel_max=4).eval()
    g.update_w_avg(n=64, generator=torch.Generator().manual_seed(0))
    return g


def _run(generator, tmp_path, n, predictor, batch_size=4, name="b.zarr"):
    source = StyleGANSource(generator, "tiny256")
    cfg = GenerateConfig(generator="tiny256", n=n, seed=1, chunk_size=8, batch_size=batch_size)
    out = generate_bank(cfg, tmp_path / name, source=source, predictor=predictor, ctx=QUIET)
    return LatentBank.open(out)


@pytest.mark.parametrize("n", [6, 20])
def test_predictor_sees_small_batches_at_its_size_and_one_batch_lives(
    generator, tmp_path, tracker, n
):
    predictor = RecordingPredictor(tracker, 16)
    bank = _run(generator, tmp_path, n, predictor)
    assert bank.meta["resolution"] == RESOLUTION
    assert bank.meta["score_kinds"] == {"bald": "probability", "pose": "value"}
    scoring = predictor.calls[1:]  # calls[0] is the one-image shape probe
    assert sum(c[0] for c in scoring) == n
    assert all(c[0] <= 4 and c[1:] == (3, 16, 16) for c in scoring), scoring
    # No rendered batch survives into the scoring of the next: the full-size batch is dropped
    # once resized, so none is alive while the predictor runs, whatever n.
    assert max(predictor.alive_batches[1:]) == 0, predictor.alive_batches
    assert len(tracker.rendered) == 1 + 2 * (n // 8) + -(-(n % 8) // 4)  # probe + batches


@pytest.mark.parametrize("n", [6, 20])
def test_without_resizes_to_the_predictor_gets_full_size_and_one_batch(
    generator, tmp_path, tracker, n
):
    predictor = RecordingPredictor(tracker)
    bank = _run(generator, tmp_path, n, predictor)
    scoring = predictor.calls[1:]
    assert all(c[0] <= 4 and c[1:] == (3, RESOLUTION, RESOLUTION) for c in scoring), scoring
    one_batch = 4 * 3 * RESOLUTION * RESOLUTION * 4  # bytes of float32 [4, 3, 256, 256]
    assert max(predictor.alive_batches[1:]) == 1, predictor.alive_batches  # the one scored
    assert max(predictor.alive_bytes[1:]) <= one_batch
    assert np.ptp(bank.scores(["pose"])["pose"]) > 0


def test_a_checked_foreign_predictor_declares_resizes_to_through_its_wrapper(
    generator, tmp_path, tracker
):
    predictor = CheckedPredictor(RecordingPredictor(tracker, 32), "py:test:factory")
    _run(generator, tmp_path, 5, predictor)
    assert {c[1:] for c in predictor.inner.calls} == {(3, 32, 32)}


def test_resizing_early_gives_the_scores_the_predictor_would_compute(generator, tmp_path):
    """AttributeNet resizes to its input size itself, with the same filter: declaring
    `resizes_to` (as it does) moves that step into `generate` without changing a score."""

    class SilentNet(AttributeNet):  # declares nothing: generate hands over full-size images
        resizes_to = None

    torch.manual_seed(3)
    declaring = AttributeNet(width=8, hidden=16, image_size=16).eval()
    plain = SilentNet(width=8, hidden=16, image_size=16).eval()
    plain.load_state_dict(declaring.state_dict())
    assert gen_mod.predictor_resize(declaring) == 16 and gen_mod.predictor_resize(plain) is None
    a = _run(generator, tmp_path, 6, plain, name="plain.zarr")
    b = _run(generator, tmp_path, 6, declaring, name="declaring.zarr")
    for name, values in a.scores().items():
        np.testing.assert_array_equal(b.scores([name])[name], values)


def test_a_nonsense_resizes_to_is_one_line(generator, tmp_path, tracker):
    with pytest.raises(UserInputError, match="resizes_to"):
        _run(generator, tmp_path, 2, RecordingPredictor(tracker, 0))
    with pytest.raises(UserInputError, match="resizes_to"):
        gen_mod.predictor_resize(type("P", (), {"resizes_to": 32.0})())


def test_fit_for_predictor_never_enlarges():
    images = torch.zeros(2, 3, 16, 16)
    assert gen_mod.fit_for_predictor(images, 32) is images
    assert gen_mod.fit_for_predictor(images, None) is images
    assert gen_mod.fit_for_predictor(images, 8).shape == (2, 3, 8, 8)
