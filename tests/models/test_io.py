import pytest
import torch

from ganedit.errors import UserInputError
from ganedit.models.predictors import AttributeNet, IdentityNet
from ganedit.models.registry import load_pretrained, save_pretrained
from ganedit.training.checkpoint import load_checkpoint, save_checkpoint
from tolerance import assert_f32_close


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (AttributeNet, {"arch": "plain", "width": 8}),
        (AttributeNet, {"arch": "residual", "width": 8}),
        (IdentityNet, {"width": 8, "dim": 16}),
    ],
)
def test_save_load_round_trip_gives_identical_outputs(tmp_path, cls, kwargs):
    model = cls(**kwargs).eval()
    images = torch.rand(3, 3, 64, 64) * 2 - 1
    save_pretrained(model, tmp_path / "m")
    loaded = load_pretrained(tmp_path / "m")
    assert type(loaded) is cls and loaded.config == model.config
    with torch.no_grad():
        a, b = model(images), loaded(images)
    for x, y in zip(
        a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,), strict=True
    ):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_attribute_net_accepts_other_sizes():
    model = AttributeNet(width=8).eval()
    probs = model.predict(torch.zeros(2, 3, 128, 128))
    assert set(probs) == {"smile", "gender", "glasses", "age", "yaw"} and probs["smile"].shape == (
        2,
    )


def test_embed_and_predict_is_embed_and_predict_in_one_pass():
    torch.manual_seed(0)
    model = AttributeNet(width=8).eval()
    images = torch.rand(5, 3, 64, 64) * 2 - 1
    features, pred = model.embed_and_predict(images, batch_size=2)
    torch.testing.assert_close(features, model.embed(images, batch_size=2), rtol=0, atol=0)
    expected = model.predict(images, batch_size=2)
    assert pred.keys() == expected.keys()
    for name in expected:
        assert_f32_close(pred[name], expected[name])


def test_missing_model_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserInputError, match="config.json"):
        load_pretrained(tmp_path)


def test_checkpoint_restores_model_and_optimizer(tmp_path):
    model = AttributeNet(width=8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.0, 0.99))
    model(torch.rand(2, 3, 64, 64))[0].sum().backward()
    opt.step()
    save_checkpoint(tmp_path / "ckpt", {"model": model}, {"opt": opt}, {"step": 1})
    other = AttributeNet(width=8)
    other_opt = torch.optim.Adam(other.parameters(), lr=1e-3, betas=(0.0, 0.99))
    meta = load_checkpoint(tmp_path / "ckpt", {"model": other}, {"opt": other_opt})
    assert meta == {"step": 1}
    for p, q in zip(model.state_dict().values(), other.state_dict().values(), strict=True):
        torch.testing.assert_close(p, q)
    s, t = opt.state_dict()["state"], other_opt.state_dict()["state"]
    assert s.keys() == t.keys()
    for k in s:
        torch.testing.assert_close(s[k]["exp_avg_sq"], t[k]["exp_avg_sq"])


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, ("true",))


def test_a_refused_pickle_names_the_global_and_never_advises_allowing_it(tmp_path):
    from ganedit.models.io import safe_torch_load

    path = tmp_path / "hostile.pt"
    torch.save({"x": _Payload()}, path)
    with pytest.raises(UserInputError) as err:
        safe_torch_load(path, "a checkpoint")
    message = str(err.value)
    assert "references posix.system" in message and "\n" not in message
    assert "weights_only" not in message and "trusted source" not in message
