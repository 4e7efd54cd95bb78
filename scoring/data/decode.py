"""Decoding the chosen rows: texts as strings (pairs as tuples), images as uint8 pixels.

Images stay uint8 from decoding to the models (a quarter of float32's memory): the models
take float32 ``value / divisor`` (`PIXEL_DIVISOR` = 255 for image files, 16 for digits),
converted a batch at a time (`scoring.training.pixels`). `to_float` and `display_pixels`
give the numpy forms here, with the same arithmetic, for the few consumers outside training.
"""

from __future__ import annotations

import io
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from scoring.data.columns import column_values, is_blank, show_ids
from scoring.errors import InputError

if TYPE_CHECKING:
    import datasets
    from PIL import Image as PILImage


_GRAYSCALE_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})
_CHUNK = 4096  # rows decoded per step: a few MB of pixels and cells
_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")
PIXEL_DIVISOR = 255  # 8-bit image files: the models take value / 255 in [0, 1]


def read_texts(
    table: datasets.Dataset, cols: tuple[str, ...], rows: np.ndarray, where: str
) -> list[str] | list[tuple[str, str]]:
    """Texts of the given rows; two columns give (str, str) pairs."""
    columns = [_text_column(table, col, rows, where) for col in cols]
    return columns[0] if len(columns) == 1 else list(zip(*columns, strict=True))


def _text_column(table: datasets.Dataset, col: str, rows: np.ndarray, where: str) -> list[str]:
    """One column's values as strings; missing or empty text is an error."""
    values = column_values(table, col, rows)
    blank = [int(row) for row, value in zip(rows, values, strict=True) if is_blank(value)]
    if blank:
        raise InputError(
            f"{len(blank)} example(s) in {where} have empty or missing text in column {col!r} "
            f"(row ids {show_ids(blank)}); every example needs text: drop or fill them"
        )
    return [value if isinstance(value, str) else str(value) for value in values]


def read_images(
    col: str, parts: list[tuple[datasets.Dataset, np.ndarray, str]], as_float: bool = False
) -> list[np.ndarray]:
    """Decode the given rows of each part; one mode and one size across all parts.

    The decoded bytes are kept as uint8 (the models' float32 is value / `PIXEL_DIVISOR`,
    converted per batch). `as_float` gives that float32 form for the whole set instead,
    as runs held it before (4x the memory; `bench/memory.py` measures it as "before").

    Returns
    -------
    list of ndarray of shape (n_rows, n_channels, height, width), uint8; float32 in [0, 1]
    (value / 255) with `as_float`
    """
    # Two passes over chunks of rows, so that neither the decoded images (60,000 PIL images
    # cost more than their pixels) nor all the encoded cells are held at once: the first
    # reads headers only (PIL's open parses mode and size without decoding), the second
    # decodes each chunk into a small uint8 buffer and converts it into the output.
    mode, size = _common_format(col, parts)
    return [_decode_part(col, t, rows, where, mode, size, as_float) for t, rows, where in parts]


def _chunks(t: datasets.Dataset, col: str, rows: np.ndarray) -> Iterator[list]:
    """(row id, stored cell) pairs of column `col`, `_CHUNK` rows at a time."""
    for start in range(0, len(rows), _CHUNK):
        part = rows[start : start + _CHUNK]
        yield [
            (int(row), cell) for row, cell in zip(part, column_values(t, col, part), strict=True)
        ]


def read_image_sizes(
    col: str, parts: list[tuple[datasets.Dataset, np.ndarray, str]]
) -> list[np.ndarray]:
    """Each given row's stored (width, height), read from the headers alone.

    `read_images` resizes every image to the most common size; the image properties
    `odd_size` and `odd_aspect_ratio` (`scoring.scores.image_properties`) need the sizes as
    stored. A header is parsed without decoding the image.

    Returns
    -------
    list of ndarray of shape (n_rows, 2), int64
        One per part: width, height.
    """
    return [
        np.array([size for _, size in _headers(col, t, rows, where)], dtype=np.int64).reshape(-1, 2)
        for t, rows, where in parts
    ]


def _headers(
    col: str, t: datasets.Dataset, rows: np.ndarray, where: str
) -> Iterator[tuple[str, tuple[int, int]]]:
    """(mode, (width, height)) of each row's stored image, header only, in row order."""
    for chunk in _chunks(t, col, rows):
        for row, cell in chunk:
            yield _open_image(cell, row, where, col, load=False)


def _common_format(
    col: str, parts: list[tuple[datasets.Dataset, np.ndarray, str]]
) -> tuple[str, tuple[int, int]]:
    """The one mode ("L" or "RGB") and (width, height) every image is decoded to, read from
    the headers alone; warns when sizes differ (all are resized to the most common)."""
    modes, sizes = set(), Counter()
    for t, rows, where in parts:
        for m, size in _headers(col, t, rows, where):
            modes.add(m)
            sizes[size] += 1
    # Gray stays one channel only if every image is gray: mixed sets need RGB for all.
    mode = "L" if modes <= _GRAYSCALE_MODES else "RGB"
    size = sizes.most_common(1)[0][0]
    if len(sizes) > 1:
        warnings.warn(
            f"images come in {len(sizes)} sizes; resizing all to {size[0]}x{size[1]} "
            "(the most common)",
            stacklevel=5,  # the caller of `load` (through read_images)
        )
    return mode, size


def _decode_part(
    col: str,
    t: datasets.Dataset,
    rows: np.ndarray,
    where: str,
    mode: str,
    size: tuple[int, int],
    as_float: bool,
) -> np.ndarray:
    """One part's images as (n_rows, channels, height, width): uint8, or float32 value / 255."""
    from PIL import Image

    width, height = size
    channels = 1 if mode == "L" else 3
    dtype = np.float32 if as_float else np.uint8
    array = np.empty((len(rows), channels, height, width), dtype=dtype)
    done = 0
    for chunk in _chunks(t, col, rows):
        images = (_open_image(cell, row, where, col) for row, cell in chunk)
        pixels = _to_uint8(images, len(chunk), mode, size, Image.Resampling.BILINEAR)
        if as_float:  # straight into the output: no uint8 copy of the whole set
            into = array[done : done + len(chunk)]
            np.divide(pixels, np.float32(PIXEL_DIVISOR), out=into, dtype=np.float32)
        else:
            array[done : done + len(chunk)] = pixels
        done += len(chunk)
    return array


def _open_image(
    cell: dict | None, row: int, where: str, col: str, load: bool = True
) -> PILImage.Image | tuple[str, tuple[int, int]]:
    """Decode one stored image ({'bytes', 'path'}); failures name the row, column and file.

    With `load=False` only the header is read: (mode, (width, height)).
    """
    from PIL import Image

    data, path = (cell or {}).get("bytes"), (cell or {}).get("path")
    at = f"row id {row} of {where}, column {col!r}" + (f" ({path})" if path else "")
    if not data and not path:
        raise InputError(f"no image at {at}; every example needs an image: drop or fill it")
    try:
        # PIL only warns between its limit and twice it; refuse such an image instead of
        # decoding a possible decompression bomb.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data) if data else path) as image:
                if not load:
                    return image.mode, image.size
                image.load()
                return image
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise InputError(
            f"image at {at} is too large: {error} Shrink or remove it (images above PIL's "
            f"limit of {Image.MAX_IMAGE_PIXELS:,} pixels are refused)"
        ) from error
    except Image.UnidentifiedImageError as error:
        raise InputError(
            f"unreadable image at {at}: not in any image format PIL reads; fix or remove that "
            "file or row"
        ) from error
    except (OSError, ValueError) as error:
        raise InputError(
            f"unreadable image at {at}: {_plain(error)}; fix or remove that file or row"
        ) from error


def _plain(error: BaseException) -> str:
    """An error's message without Python object reprs such as <_io.BytesIO object at 0x...>."""
    text = _OBJECT_REPR.sub("the image", str(error)).strip()
    return text or type(error).__name__


def _to_uint8(
    images: Iterable[PILImage.Image],
    n_images: int,
    mode: str,
    size: tuple[int, int],
    resample: int,
) -> np.ndarray:
    """Stack images as (N, C, H, W) uint8, one decoded image in memory at a time."""
    width, height = size
    channels = 1 if mode == "L" else 3
    pixels = np.empty((n_images, channels, height, width), dtype=np.uint8)  # (N, C, H, W)
    for i, image in enumerate(images):
        image = image.convert(mode)
        if image.size != size:
            image = image.resize(size, resample)
        pixels[i] = np.asarray(image).reshape(height, width, channels).transpose(2, 0, 1)
    return pixels


def to_float(pixels: np.ndarray, divisor: int) -> np.ndarray:
    """The models' float32 form of uint8 pixels: float32 value / float32 divisor.

    IEEE division, correctly rounded: the very numbers `read_images(as_float=True)` and
    digits' float64 value / 16 (exact, 16 being a power of two) gave.

    Parameters
    ----------
    pixels : ndarray of shape (n_examples, ...), uint8
    divisor : int
        255 for image files, 16 for digits (`Dataset.pixel_divisor`).

    Returns
    -------
    ndarray of the same shape, float32
    """
    out = pixels.astype(np.float32)
    out /= np.float32(divisor)
    return out


def display_pixels(pixels: np.ndarray, divisor: int | None) -> np.ndarray:
    """0..255 bytes for showing, hashing or a pretrained encoder: rint(float32 input x 255).

    That is the decoded bytes themselves for image files (divisor 255: returned as is, no
    copy) and digits' 0..16 stretched to 0..255. A 256-entry table of the float arithmetic
    gives the same bytes as applying it to the float32 inputs, without making them.

    Parameters
    ----------
    pixels : ndarray of shape (n_examples, ...)
        uint8 with its `divisor`; or float32 model inputs in [0, 1] with divisor None.
    divisor : int or None

    Returns
    -------
    ndarray of the same shape, uint8
    """
    if divisor is None:
        return np.clip(np.rint(pixels * 255), 0, 255).astype(np.uint8)
    table = display_pixels(to_float(np.arange(256, dtype=np.uint8), divisor), None)  # (256,)
    if np.array_equal(table, np.arange(256)):
        return pixels
    return table[pixels]
