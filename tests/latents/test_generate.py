import json

import numpy as np
import pytest
import torch
from torch import nn

import ganedit.latents.generate as gen_mod
from ganedit.errors import UserInputError
from ganedit.latents import GenerateConfig, LatentBank, assign_chunks, generate_bank, partial_path
from ganedit.models.predictors import AttributeNet
from ganedit.models.sources import StyleGANSource, ZOnlySource
from ganedit.models.stylegan2 import Generator
from ganedit.utils.context import RunContext
from ganedit.utils.images import decode, to_uint8
from tolerance import assert_f32_close

QUIET = RunContext(progress=False)

LABELER_NAMES = {"smile", "gender", "glasses", "age", "yaw"}


@pytest.fixture(scope="module")
def source():
    torch.manual_seed(0)
    g = Generator(16, style_dim=16, n_mlp=2, channel_max=16).eval()
    g.update_w_avg(n=256, generator=torch.Generator().manual_seed(0))
    return StyleGANSource(g, "tiny", truncation_psi=0.7)


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(1)
    return AttributeNet(width=8, hidden=16, image_size=16).eval()


def _cfg(**kw):
    base = dict(generator="tiny", n=40, seed=3, truncation_psi=0.7, chunk_size=16, batch_size=8)
    return GenerateConfig(**{**base, **kw})


def _generate(cfg, out, source, predictor, overwrite=False, **kw):
    ctx = RunContext(progress=False, overwrite=overwrite)
    return generate_bank(cfg, out, source=source, predictor=predictor, ctx=ctx, **kw)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, source, predictor):
    """An uninterrupted run of `_cfg()`."""
    out = tmp_path_factory.mktemp("ref") / "bank.zarr"
    return LatentBank.open(_generate(_cfg(), out, source, predictor))


def _arrays(bank: LatentBank) -> dict[str, np.ndarray]:
    out = {space: bank.latents(space) for space in bank.spaces}
    out["index"] = bank.index()
    out.update({f"scores/{k}": v for k, v in bank.scores().items()})
    return out


def test_bank_has_the_configured_shapes_metadata_and_scores(reference):
    bank = reference
    assert bank.n == len(bank) == 40 and bank.spaces == ("z", "w")
    assert bank.latents("z").shape == (40, 16) and bank.latents("z").dtype == np.float32
    assert bank.latents("w").shape == (40, 16) and bank.dims("w") == (16,)
    np.testing.assert_array_equal(bank.index(), np.arange(40))
    assert set(bank.score_names) == LABELER_NAMES
    for name, values in bank.scores().items():
        assert values.shape == (40,) and values.dtype == np.float32
        if name != "yaw":
            assert values.min() >= 0 and values.max() <= 1
    meta = bank.meta
    assert meta["complete"] is True and meta["format_version"] == 1
    assert (meta["generator"], meta["predictor"], meta["seed"]) == ("tiny", "labeler", 3)
    assert meta["truncation_psi"] == 0.7 and meta["chunk_size"] == 16 and meta["n_chunks"] == 3
    assert meta["ganedit_version"] and meta["created"] and meta["resolution"] == 16
    assert meta["config"] == _cfg().to_dict() == bank.config
    assert json.loads((bank.path / "config.json").read_text()) == _cfg().to_dict()
    assert not partial_path(bank.path).exists()
    with pytest.raises(UserInputError, match="latent space"):
        bank.latents("ws")


def test_stored_w_reproduces_the_scored_images(reference, source, predictor):
    z, w = torch.from_numpy(reference.latents("z")), torch.from_numpy(reference.latents("w"))
    np.testing.assert_array_equal(source.sample_z(40, seed=3).numpy(), z.numpy())
    assert_f32_close(source.to_w(z), w)
    rescored = predictor.predict(source.synthesize(w, "w", batch_size=40), batch_size=40)
    for name, stored in reference.scores().items():
        assert_f32_close(rescored[name], stored, ulps=1024)


def test_sample_i_does_not_depend_on_chunk_or_batch_size(reference, source, predictor, tmp_path):
    other = _cfg(n=25, chunk_size=7, batch_size=5)
    bank = LatentBank.open(_generate(other, tmp_path / "b.zarr", source, predictor))
    np.testing.assert_array_equal(bank.latents("z"), reference.latents("z", 0, 25))
    assert_f32_close(bank.latents("w"), reference.latents("w", 0, 25))
    for name, values in bank.scores().items():
        assert_f32_close(values, reference.scores([name], 0, 25)[name], ulps=1024)


def test_resume_after_a_kill_gives_the_uninterrupted_bank(
    reference, source, predictor, tmp_path, monkeypatch
):
    out = tmp_path / "bank.zarr"
    real, calls = gen_mod._compute_chunk, []

    def dies_after_two_chunks(*args, **kwargs):
        calls.append(args[3])  # start row
        if len(calls) > 2:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(gen_mod, "_compute_chunk", dies_after_two_chunks)
    with pytest.raises(KeyboardInterrupt):
        _generate(_cfg(), out, source, predictor)
    assert not out.exists() and partial_path(out).is_dir()
    with pytest.raises(UserInputError, match="resume"):
        LatentBank.open(out)
    with pytest.raises(UserInputError, match="incomplete"):
        LatentBank.open(partial_path(out))

    calls.clear()
    monkeypatch.setattr(
        gen_mod, "_compute_chunk", lambda *a, **k: calls.append(a[3]) or real(*a, **k)
    )
    _generate(_cfg(), out, source, predictor)
    assert calls == [32]  # only the missing chunk was computed
    assert not partial_path(out).exists()
    resumed, expected = _arrays(LatentBank.open(out)), _arrays(reference)
    assert resumed.keys() == expected.keys()
    for name in expected:
        assert np.array_equal(resumed[name], expected[name]), name


def test_resume_with_another_config_is_refused(source, predictor, tmp_path, monkeypatch):
    out = tmp_path / "bank.zarr"
    monkeypatch.setattr(gen_mod, "write_chunk", _raise_interrupt)
    with pytest.raises(KeyboardInterrupt):
        _generate(_cfg(), out, source, predictor)
    monkeypatch.undo()
    with pytest.raises(UserInputError, match=r"configuration of the interrupted run.*seed=3"):
        _generate(_cfg(seed=4), out, source, predictor)
    # Starting over explicitly is allowed.
    bank = LatentBank.open(_generate(_cfg(seed=4, n=5), out, source, predictor, resume=False))
    assert bank.meta["seed"] == 4 and bank.n == 5


def _raise_interrupt(*args, **kwargs):
    raise KeyboardInterrupt("killed")


def test_an_existing_bank_is_kept_unless_overwrite(source, predictor, tmp_path):
    out = _generate(_cfg(n=3), tmp_path / "bank.zarr", source, predictor)
    with pytest.raises(UserInputError, match="pass --overwrite"):
        _generate(_cfg(n=4), out, source, predictor)
    assert LatentBank.open(out).n == 3
    _generate(_cfg(n=4), out, source, predictor, overwrite=True)
    assert LatentBank.open(out).n == 4


def test_memory_is_one_chunk_of_latents_and_one_batch_of_images(
    source, predictor, tmp_path, monkeypatch
):
    written, synthesised = [], []
    real_write = gen_mod.write_chunk

    def spy_write(group, k, arrays):
        written.append({name: len(v) for name, v in arrays.items()})
        real_write(group, k, arrays)

    class SpySource(StyleGANSource):
        def render(self, latents, space="z", noise=None, modes=None):
            synthesised.append(len(latents))  # generate renders one batch per call
            return super().render(latents, space, noise, modes)

    spy = SpySource(source.generator, "tiny", truncation_psi=0.7)
    monkeypatch.setattr(gen_mod, "write_chunk", spy_write)
    _generate(_cfg(n=37, chunk_size=10, batch_size=4), tmp_path / "b.zarr", spy, predictor)
    assert [set(rows.values()) for rows in written] == [{10}, {10}, {10}, {7}]
    assert max(synthesised) <= 4 and sum(synthesised) == 37 + 1  # + the shape probe


def test_ws_and_images_are_stored_on_request(source, predictor, tmp_path):
    cfg = _cfg(n=5, chunk_size=4, store_ws=True, save_images=True)
    bank = LatentBank.open(_generate(cfg, tmp_path / "b.zarr", source, predictor))
    ws, w = bank.latents("ws"), bank.latents("w")
    assert bank.spaces == ("z", "w", "ws") and ws.shape == (5, source.generator.num_ws, 16)
    np.testing.assert_array_equal(ws, np.repeat(w[:, None], ws.shape[1], axis=1))
    names = sorted(p.name for p in (bank.path / "images").iterdir())
    assert names == [f"{i:07d}.png" for i in range(5)]
    expected = to_uint8(source.synthesize(torch.from_numpy(w), "w"))
    for i in range(5):
        assert np.abs(decode(bank.image_path(i).read_bytes()).astype(int) - expected[i]).max() <= 1


def test_a_z_only_generator_without_predictor(tmp_path):
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(8, 3 * 4 * 4), nn.Unflatten(1, (3, 4, 4)), nn.Tanh())
    zonly = ZOnlySource(net, "lin", z_dim=8, resolution=4)
    cfg = GenerateConfig(generator="lin", predictor="none", n=9, chunk_size=4)
    bank = LatentBank.open(generate_bank(cfg, tmp_path / "b.zarr", source=zonly, ctx=QUIET))
    assert bank.spaces == ("z",) and bank.score_names == () and bank.scores() == {}
    np.testing.assert_array_equal(bank.latents("z"), zonly.sample_z(9, seed=0).numpy())
    with pytest.raises(UserInputError, match="ws space"):
        generate_bank(
            GenerateConfig(generator="lin", predictor="none", n=2, store_ws=True),
            tmp_path / "c.zarr",
            source=zonly,
        )


def test_config_is_validated():
    with pytest.raises(UserInputError, match="n >= 1"):
        GenerateConfig(generator="g", n=0)
    with pytest.raises(UserInputError, match="chunk_size"):
        GenerateConfig(generator="g", chunk_size=0)


@pytest.mark.parametrize("n_chunks", [0, 1, 7, 13])
@pytest.mark.parametrize("world", [1, 2, 3, 5])
def test_rank_chunk_assignment_is_a_disjoint_cover(n_chunks, world):
    parts = [assign_chunks(n_chunks, rank, world) for rank in range(world)]
    flat = [k for part in parts for k in part]
    assert sorted(flat) == list(range(n_chunks)) and len(set(flat)) == len(flat)
    assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1
    with pytest.raises(UserInputError):
        assign_chunks(n_chunks, world, world)


def test_generator_and_predictor_load_by_path(source, predictor, tmp_path):
    from ganedit.models.registry import save_pretrained

    save_pretrained(source.generator, tmp_path / "g")
    save_pretrained(predictor, tmp_path / "p")
    cfg = _cfg(generator=str(tmp_path / "g"), predictor=str(tmp_path / "p"), n=6)
    by_path = LatentBank.open(generate_bank(cfg, tmp_path / "a.zarr", ctx=QUIET))
    given = LatentBank.open(_generate(cfg, tmp_path / "b.zarr", source, predictor))
    np.testing.assert_array_equal(by_path.latents("w"), given.latents("w"))
    for name, values in given.scores().items():
        assert_f32_close(by_path.scores([name])[name], values)


def test_a_second_writer_of_the_same_bank_is_refused(source, predictor, tmp_path):
    """Two `generate` runs into one bank would mix their chunks: the second is refused."""
    from ganedit.errors import BusyError
    from ganedit.utils.files import output_lock

    out = tmp_path / "b.zarr"
    with output_lock(out), pytest.raises(BusyError, match="another writer|no other writer"):
        _generate(_cfg(seed=5), out, source, predictor)
    assert not out.exists()
    bank = LatentBank.open(_generate(_cfg(seed=5), out, source, predictor))
    assert bank.meta["seed"] == 5 and bank.generator_identity["name"] == _cfg().generator
