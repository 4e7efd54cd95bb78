"""Decoding the chosen rows: texts as strings (pairs as tuples), images as float32 (or uint8)."""

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
    col: str, parts: list[tuple[datasets.Dataset, np.ndarray, str]], as_uint8: bool = False
) -> list[np.ndarray]:
    """Decode the given rows of each part; one mode and one size across all parts.

    `as_uint8` keeps the decoded bytes (a quarter of the memory; value / 255 gives the
    float32 form exactly). The training code still takes float32, so `load` asks for that.

    Returns
    -------
    list of ndarray of shape (n_rows, n_channels, height, width), float32 in [0, 1]
    (value / 255), or uint8 with `as_uint8`
    """
    from PIL import Image

    # Two passes over chunks of rows, so that neither the decoded images (60,000 PIL images
    # cost more than their pixels) nor all the encoded cells are held at once: the first
    # reads headers only (PIL's open parses mode and size without decoding), the second
    # decodes each chunk into a small uint8 buffer and converts it into the output.
    def chunks(t: datasets.Dataset, rows: np.ndarray, where: str) -> Iterator[list]:
        for start in range(0, len(rows), _CHUNK):
            part = rows[start : start + _CHUNK]
            yield [
                (int(row), cell)
                for row, cell in zip(part, column_values(t, col, part), strict=True)
            ]

    modes, sizes = set(), Counter()
    for t, rows, where in parts:
        for chunk in chunks(t, rows, where):
            for row, cell in chunk:
                m, size = _open_image(cell, row, where, col, load=False)
                modes.add(m)
                sizes[size] += 1
    # Gray stays one channel only if every image is gray: mixed sets need RGB for all.
    mode = "L" if modes <= _GRAYSCALE_MODES else "RGB"
    size = sizes.most_common(1)[0][0]
    if len(sizes) > 1:
        warnings.warn(
            f"images come in {len(sizes)} sizes; resizing all to {size[0]}x{size[1]} "
            "(the most common)",
            stacklevel=4,  # the caller of `load`
        )
    width, height = size
    channels = 1 if mode == "L" else 3
    out = []
    for t, rows, where in parts:
        dtype = np.uint8 if as_uint8 else np.float32
        array = np.empty((len(rows), channels, height, width), dtype=dtype)
        done = 0
        for chunk in chunks(t, rows, where):
            images = (_open_image(cell, row, where, col) for row, cell in chunk)
            pixels = _to_uint8(images, len(chunk), mode, size, Image.Resampling.BILINEAR)
            if as_uint8:
                array[done : done + len(chunk)] = pixels
            else:
                # float32 / float32(255), as before (bit-identical), into the output directly.
                into = array[done : done + len(chunk)]
                np.divide(pixels, np.float32(255), out=into, dtype=np.float32)
            done += len(chunk)
        out.append(array)
    return out


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
