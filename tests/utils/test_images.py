import numpy as np
import pytest
from PIL import ImageFont

from ganedit.errors import UserInputError
from ganedit.utils import images as images_module
from ganedit.utils.images import format_strength, grid, labelled_grid


def _tiles(n: int, h: int = 8, w: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)


def _layout(out: np.ndarray, tiles: np.ndarray, cols: int, scale: int, pad: int = 2):
    """(top, left) of the body: the body is the bottom-right corner of the output."""
    n, h, w, _ = tiles.shape
    rows = -(-n // cols)
    body_h = rows * (h * scale + pad) + pad
    body_w = cols * (w * scale + pad) + pad
    return out.shape[0] - body_h, out.shape[1] - body_w


def _upscale(tiles: np.ndarray, scale: int) -> np.ndarray:
    return tiles.repeat(scale, axis=1).repeat(scale, axis=2)


@pytest.mark.parametrize(
    ("n", "cols", "scale"), [(1, 1, 1), (6, 3, 1), (7, 3, 2), (5, 5, 3), (4, 6, 2), (9, 2, 1)]
)
def test_shapes_without_labels_match_grid_layout(n, cols, scale):
    tiles = _tiles(n)
    out = labelled_grid(tiles, cols, scale=scale)
    rows = -(-n // cols)
    assert out.dtype == np.uint8
    assert out.shape == (rows * (8 * scale + 2) + 2, cols * (8 * scale + 2) + 2, 3)
    np.testing.assert_array_equal(out, grid(_upscale(tiles, scale), cols))


@pytest.mark.parametrize(("pad", "fill"), [(2, 255), (0, 0), (5, 128)])
def test_no_labels_scale_one_equals_grid(pad, fill):
    tiles = _tiles(7, 5, 9)
    out = labelled_grid(tiles, 3, pad=pad, fill=fill)
    np.testing.assert_array_equal(out, grid(tiles, 3, pad, fill))


def test_scale_multiplies_tile_size_and_keeps_pixel_values():
    tiles = _tiles(2, 4, 6)
    out = labelled_grid(tiles, 2, scale=3, pad=0)
    assert out.shape == (12, 36, 3)
    # Every 3x3 block is one source pixel (nearest neighbour, no blending).
    for k in range(2):
        tile = out[:, k * 18 : (k + 1) * 18]
        np.testing.assert_array_equal(tile[::3, ::3], tiles[k])
        for dy in range(3):
            for dx in range(3):
                np.testing.assert_array_equal(tile[dy::3, dx::3], tiles[k])
    assert set(np.unique(out)) <= set(np.unique(tiles))


@pytest.mark.parametrize(("n", "cols", "scale"), [(15, 5, 2), (7, 3, 1), (4, 4, 3)])
def test_labels_are_drawn_and_never_paint_over_tiles(n, cols, scale):
    tiles = _tiles(n, 16, 16)
    rows = -(-n // cols)
    out = labelled_grid(
        tiles,
        cols,
        col_labels=[format_strength(v) for v in np.linspace(-3, 3, cols)],
        row_labels=[f"#{r}" for r in range(rows)],
        title="regression: smile (w), calibrated units",
        scale=scale,
    )
    top, left = _layout(out, tiles, cols, scale)
    assert top > 0 and left > 0
    # The body is exactly grid() of the upscaled tiles: labels never reach it.
    np.testing.assert_array_equal(out[top:, left:], grid(_upscale(tiles, scale), cols))
    # Text was drawn: dark pixels in the top band and in the left band.
    assert (out[:top].max(axis=-1) < 100).sum() > 10
    assert (out[top:, :left].max(axis=-1) < 100).sum() > 10
    # Background around the text stays the fill colour.
    assert (out[:top] == 255).all(axis=-1).mean() > 0.5


def test_text_size_does_not_grow_with_scale():
    tiles = _tiles(4, 16, 16)
    kw = {"col_labels": ["a", "b"], "row_labels": ["#0", "#1"], "title": "t"}
    small = labelled_grid(tiles, 2, scale=1, **kw)
    large = labelled_grid(tiles, 2, scale=4, **kw)
    assert _layout(small, tiles, 2, 1)[0] == _layout(large, tiles, 2, 4)[0]


def test_each_band_only_when_asked():
    tiles = _tiles(4)
    cols_only = labelled_grid(tiles, 2, col_labels=["-1", "+1"])
    top, left = _layout(cols_only, tiles, 2, 1)
    assert top > 0 and left == 0
    rows_only = labelled_grid(tiles, 2, row_labels=["#0", "#1"])
    top, left = _layout(rows_only, tiles, 2, 1)
    assert top == 0 and left > 0
    title_only = labelled_grid(tiles, 2, title="hello")
    top, left = _layout(title_only, tiles, 2, 1)
    assert top > 0 and left == 0
    both = labelled_grid(tiles, 2, col_labels=["-1", "+1"], title="hello")
    assert _layout(both, tiles, 2, 1)[0] > _layout(cols_only, tiles, 2, 1)[0]


def test_long_labels_are_shortened_not_overlapping():
    tiles = _tiles(6, 32, 32)
    long = "a very long label that cannot possibly fit " * 3
    out = labelled_grid(tiles, 3, col_labels=[long] * 3, row_labels=[long] * 2, title=long * 5)
    top, left = _layout(out, tiles, 3, 1)
    np.testing.assert_array_equal(out[top:, left:], grid(tiles, 3))
    assert left <= 48 + 2 * 4  # row labels are capped, not as wide as the text
    assert out.shape[1] == left + 3 * 34 + 2  # the title does not widen the image
    # Column labels stay in their own columns: the pad gaps above the body stay empty.
    band = out[top - 10 : top, left:]
    for q in range(4):
        gap = band[:, q * 34 : q * 34 + 2]
        assert (gap == 255).all()


def test_tiny_tiles_still_work():
    tiles = _tiles(4, 2, 2)
    out = labelled_grid(tiles, 2, col_labels=["-1.5", "+1.5"], row_labels=["#0", "#1"])
    top, left = _layout(out, tiles, 2, 1)
    np.testing.assert_array_equal(out[top:, left:], grid(tiles, 2))


def test_dark_fill_gets_light_text():
    tiles = _tiles(2, 16, 16)
    out = labelled_grid(tiles, 2, fill=0, title="dark background")
    top, _ = _layout(out, tiles, 2, 1)
    assert (out[:top].min(axis=-1) > 150).sum() > 10


def test_labels_accept_tuples_and_generators():
    tiles = _tiles(4)
    a = labelled_grid(tiles, 2, col_labels=("-1", "+1"), row_labels=(f"#{r}" for r in range(2)))
    b = labelled_grid(tiles, 2, col_labels=["-1", "+1"], row_labels=["#0", "#1"])
    np.testing.assert_array_equal(a, b)


def test_bitmap_font_fallback(monkeypatch):
    bitmap = (
        ImageFont.load_default_imagefont() if hasattr(ImageFont, "load_default_imagefont") else None
    )
    if bitmap is None:
        pytest.skip("this Pillow has no separate bitmap-font loader")
    monkeypatch.setattr(images_module, "_font", lambda size: bitmap)
    tiles = _tiles(4, 16, 16)
    out = labelled_grid(
        tiles, 2, col_labels=["-1", "+1 \u2026 \u03b1"], row_labels=["#0", "#1"], title="t " * 40
    )
    top, left = _layout(out, tiles, 2, 1)
    np.testing.assert_array_equal(out[top:, left:], grid(tiles, 2))
    assert (out[:top].max(axis=-1) < 100).sum() > 10


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"col_labels": ["a", "b"]}, "3 column labels"),
        ({"col_labels": ["a", "b", "c", "d"]}, "3 column labels"),
        ({"row_labels": ["#0"]}, "2 row labels"),
        ({"row_labels": ["#0", "#1", "#2"]}, "2 row labels"),
        ({"col_labels": "abc"}, "column labels as a list"),
        ({"scale": 0}, "scale a positive integer"),
        ({"scale": -2}, "scale a positive integer"),
        ({"scale": 1.5}, "scale a positive integer"),
        ({"scale": 2.0}, "scale a positive integer"),
        ({"scale": True}, "scale a positive integer"),
        ({"pad": -1}, "pad"),
        ({"fill": 256}, "fill"),
        ({"title": 3}, "title"),
    ],
)
def test_bad_arguments_raise_user_input_error(kwargs, match):
    with pytest.raises(UserInputError, match=f"expected .*{match}.*, received"):
        labelled_grid(_tiles(5), 3, **kwargs)


@pytest.mark.parametrize(
    "images",
    [
        np.zeros((2, 8, 8, 3), np.float32),
        np.zeros((8, 8, 3), np.uint8),
        np.zeros((2, 8, 8, 4), np.uint8),
        np.zeros((0, 8, 8, 3), np.uint8),
        [[[[0, 0, 0]]]],
    ],
)
def test_bad_images_raise_user_input_error(images):
    with pytest.raises(UserInputError, match=r"expected uint8 images of shape \[N, H, W, 3\]"):
        labelled_grid(images, 2)


@pytest.mark.parametrize("cols", [0, -1, 2.0])
def test_bad_cols_raise_user_input_error(cols):
    with pytest.raises(UserInputError, match="expected cols an integer >= 1, received"):
        labelled_grid(_tiles(2), cols)


def test_numpy_integers_are_accepted():
    tiles = _tiles(4)
    out = labelled_grid(tiles, np.int64(2), scale=np.int32(2))
    np.testing.assert_array_equal(out, grid(_upscale(tiles, 2), 2))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (-3, "-3"),
        (-3.0, "-3"),
        (-1.5, "-1.5"),
        (0, "0"),
        (0.0, "0"),
        (-0.0, "0"),
        (0.75, "+0.75"),
        (12, "+12"),
        (1.5, "+1.5"),
        (1 / 3, "+0.333"),
        (-2.25, "-2.25"),
        (0.125, "+0.125"),
        (99.99, "+100"),
        (250.4, "+250"),
        (-1234.5, "-1234"),
        (np.float32(0.5), "+0.5"),
        (np.int64(4), "+4"),
    ],
)
def test_format_strength(value, text):
    assert format_strength(value) == text


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "1", None])
def test_format_strength_rejects_non_finite(value):
    with pytest.raises(UserInputError, match="expected a finite number, received"):
        format_strength(value)


@pytest.mark.parametrize("error", [TypeError, OSError])
def test_font_falls_back_to_bitmap_when_size_is_unsupported(monkeypatch, error):
    bitmap = object()

    def old_load_default(size=None):  # Pillow < 10.1 (TypeError) or no FreeType (OSError)
        if size is not None:
            raise error("no scalable default font")
        return bitmap

    monkeypatch.setattr(ImageFont, "load_default", old_load_default)
    assert images_module._font.__wrapped__(13) is bitmap
