import dataclasses

import pytest
import torch

import ganedit.training.predictors as tp
from ganedit.models.registry import load_pretrained
from ganedit.training.predictors import PredictorTrainConfig, train_predictor
from ganedit.utils.context import RunContext

QUIET = RunContext(progress=False)


def _tiny(kind, steps):
    return PredictorTrainConfig.for_kind(
        kind, steps=steps, batch_size=8, width=8, checkpoint_every=2
    )


def test_resumed_training_continues_exactly_like_an_uninterrupted_run(tmp_path, monkeypatch):
    full = load_pretrained(train_predictor(_tiny("labeler", 4), tmp_path / "full", ctx=QUIET))
    original, done = tp.train_step, []

    def crash_at_step_two(model, opt, cfg, step):
        if step == 2:
            raise KeyboardInterrupt
        done.append(step)
        return original(model, opt, cfg, step)

    monkeypatch.setattr(tp, "train_step", crash_at_step_two)
    with pytest.raises(KeyboardInterrupt):
        train_predictor(_tiny("labeler", 4), tmp_path / "part", ctx=QUIET)
    monkeypatch.setattr(tp, "train_step", original)
    assert done == [0, 1] and not (tmp_path / "part" / "model").exists()
    resumed = load_pretrained(train_predictor(_tiny("labeler", 4), tmp_path / "part", ctx=QUIET))
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_identity_training_runs_and_stays_finite(tmp_path):
    cfg = dataclasses.replace(_tiny("identity", 2), batch_size=4)
    model = load_pretrained(train_predictor(cfg, tmp_path / "id", ctx=QUIET))
    emb = torch.as_tensor(model.embed(torch.rand(3, 3, 64, 64) * 2 - 1))
    assert torch.isfinite(emb).all()
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3))
