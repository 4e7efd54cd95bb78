"""Image properties (CleanVision's definitions) and Datalab's spurious-correlation check.

Images are built here: random textures (clean), and copies made dark, light, blurred
(Gaussian sigma 2), near-constant, gray, elongated or large. Each flag must fire on its own
injected rows and on few clean ones; the values must equal CleanVision's own property
classes on the same images (an independent computation: PIL calls, image by image), and a
run's flags CleanVision's `Imagelab` on the same files; `blurry` (the edge image's interior)
and `light`'s threshold depart from CleanVision, and are checked against PIL calls and as a
superset of its flags.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFilter

from scoring import store
from scoring.config import DataConfig, ScoreConfig, TrainConfig
from scoring.errors import InputError
from scoring.scores import REGISTRY, compute
from scoring.scores import image_properties as ip
from scoring.scores.registry import IMAGE_ONLY_REASON, absent_reasons, available, resolve

PIXEL_KEYS = ("dark", "light", "blurry", "low_information", "grayscale")
SIZE_KEYS = ("odd_aspect_ratio", "odd_size")
N_CLEAN, SIDE = 60, 32


def _textures(n: int, side: int = SIDE, seed: int = 0) -> np.ndarray:
    """(n, side, side, 3) uint8: smooth random colour fields plus fine noise, like photos
    in that they have edges, mid-range brightness and full histograms."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, side, side, 3), dtype=np.uint8)
    for i in range(n):
        coarse = rng.integers(10, 130, size=(8, 8, 3), dtype=np.uint8)
        base = np.asarray(Image.fromarray(coarse).resize((side, side), Image.Resampling.BICUBIC))
        out[i] = np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8)
    return out


def _near_constant(n: int, side: int = SIDE, seed: int = 1) -> np.ndarray:
    """One random colour per image, a tenth of the values off by one."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(20, 236, size=(n, 1, 1, 3))
    jitter = rng.choice([-1, 0, 1], p=[0.05, 0.9, 0.05], size=(n, side, side, 3))
    return (colours + jitter).astype(np.uint8)


def _gray(images: np.ndarray) -> np.ndarray:
    """PIL's gray of each image, as three equal channels."""
    gray = [np.asarray(Image.fromarray(im).convert("L")) for im in images]
    return np.repeat(np.stack(gray)[..., None], 3, axis=3)


def _blur(images: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    return np.stack(
        [np.asarray(Image.fromarray(im).filter(ImageFilter.GaussianBlur(sigma))) for im in images]
    )


@pytest.fixture(scope="module")
def injected() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(N, H, W, 3) uint8 images: `N_CLEAN` clean, then four of each injected kind; and per
    pixel property the rows injected with it."""
    clean = _textures(N_CLEAN)
    src = _textures(16, seed=7)
    parts = {
        "dark": (src[:4] * 0.2).astype(np.uint8),
        "light": (255 - (255 - src[4:8].astype(np.float64)) * 0.04).astype(np.uint8),
        "blurry": _blur(src[8:12]),
        "low_information": _near_constant(4),
        "grayscale": _gray(src[12:16]),
    }
    images, rows, start = [clean], {}, N_CLEAN
    for key, part in parts.items():
        images.append(part)
        rows[key] = np.arange(start, start + len(part))
        start += len(part)
    return np.concatenate(images), rows


def _nchw(images: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2))


# -- each flag on its injected rows ----------------------------------------------------------


@pytest.mark.parametrize("key", PIXEL_KEYS)
def test_each_pixel_flag_fires_on_its_rows_and_not_on_clean_ones(key, injected):
    images, rows = injected
    values = compute(key, {"images": _nchw(images)}).values
    flagged = ip.flags(values, ip.THRESHOLDS[key])
    assert flagged[rows[key]].all(), (key, values[rows[key]])
    assert flagged[:N_CLEAN].sum() <= 1, (key, np.flatnonzero(flagged[:N_CLEAN]))
    # Higher = more affected: its injected rows outrank every clean row.
    assert values[rows[key]].min() > values[:N_CLEAN].max()


def test_size_flags_fire_on_elongated_and_odd_sized_rows():
    rng = np.random.default_rng(0)
    sizes = rng.integers(28, 37, size=(60, 2))  # (N, 2): a spread of ordinary sizes
    sizes[50:53] = [[18, 56], [60, 17], [19, 55]]  # elongated (w/h or h/w below 0.35)
    sizes[55:58] = [[400, 400], [300, 320], [2, 2]]  # far outside the quartile fence
    aspect = ip.odd_aspect_ratio(image_sizes=sizes)
    odd = ip.odd_size(image_sizes=sizes)
    assert set(np.flatnonzero(ip.flags(aspect, ip.THRESHOLDS["odd_aspect_ratio"]))) == {50, 51, 52}
    limit = ip.odd_size_threshold(sizes)
    assert limit == 0.5  # a spread of sizes: CleanVision's 0.5 (its score below 0.5)
    assert set(np.flatnonzero(ip.flags(odd, limit))) == {55, 56, 57}
    np.testing.assert_allclose(aspect[50], 1 - 18 / 56)


def test_odd_size_with_one_common_size_flags_any_other_size():
    sizes = np.tile([32, 32], (40, 1))
    sizes[3] = [33, 32]
    assert ip.odd_size_threshold(sizes) == 0.0  # CleanVision's 1.0 when the IQR is 0
    assert list(np.flatnonzero(ip.flags(ip.odd_size(image_sizes=sizes), 0.0))) == [3]
    assert not ip.flags(ip.odd_size(image_sizes=np.tile([8, 8], (5, 1))), 0.0).any()


def test_one_channel_images_are_gray_and_read_as_pil_l_images(injected):
    images, _ = injected
    gray = np.stack([np.asarray(Image.fromarray(im).convert("L")) for im in images[:20]])
    assert (ip.grayscale(images=gray[:, None]) == 1).all()
    # One channel or three equal ones: the same brightness (0.241 + 0.691 + 0.068 = 1).
    want = ip.dark(images=_nchw(_gray(images[:20])))
    np.testing.assert_allclose(ip.dark(images=gray[:, None]), want, atol=1e-12)


# -- against CleanVision's own code ----------------------------------------------------------


def _cleanvision_scores(images: list[Image.Image]) -> pd.DataFrame:
    """CleanVision's scores (lower = more affected) from its property classes, per image."""
    from cleanvision.issue_managers.image_property import (
        BlurrinessProperty,
        BrightnessProperty,
        EntropyProperty,
    )

    bright = pd.DataFrame([BrightnessProperty("dark").calculate(im) for im in images])
    entropy = pd.DataFrame([EntropyProperty().calculate(im) for im in images])
    blur = BlurrinessProperty()
    blur_raw = pd.DataFrame([blur.calculate(im) for im in images])
    return pd.DataFrame(
        {
            "dark": BrightnessProperty("dark").get_scores(bright, "dark")["dark_score"],
            "light": BrightnessProperty("light").get_scores(bright, "light")["light_score"],
            "low_information": EntropyProperty().get_scores(
                entropy, "low_information", normalizing_factor=0.1
            )["low_information_score"],
            "blurry": blur.get_scores(
                blur_raw, "blurry", normalizing_factor=0.01, color_threshold=0.18
            )["blurry_score"],
        }
    )


def _interior_blurry(im: Image.Image) -> float:
    """Blurry as Winnow defines it, by PIL calls image by image (an independent computation):
    CleanVision's steps (shrink to 64 px a side, gray, FIND_EDGES, ImageStat's std, the
    histogram's std) with the edge image cropped to its interior."""
    from PIL import ImageStat

    ratio = max(im.size) / 64
    if ratio > 1:
        im = im.resize((max(int(im.width // ratio), 1), max(int(im.height // ratio), 1)))
    gray = im.convert("L")
    edges = gray.filter(ImageFilter.FIND_EDGES).crop((1, 1, gray.width - 1, gray.height - 1))
    blur = 1 - np.exp(-ImageStat.Stat(edges).stddev[0] * 0.01)
    color = 1 - np.exp(-np.std(gray.histogram()) * 0.01)
    color = color if color > 0.18 else 0.0
    return 1 - min(blur + color, 1.0)


@pytest.mark.parametrize("side", [SIDE, 80])  # 80: shrunk to 64 for blurry, as CleanVision does
def test_values_equal_cleanvisions_property_classes(side, injected):
    images, _ = injected
    if side != SIDE:
        images = np.stack([np.asarray(Image.fromarray(im).resize((side, 70))) for im in images])
    theirs = _cleanvision_scores([Image.fromarray(im) for im in images])
    for key in ("dark", "light", "low_information"):
        ours = getattr(ip, key)(images=_nchw(images))
        # Ours is 1 - CleanVision's score; the entropy's float sums differ in the last bits.
        np.testing.assert_allclose(ours, 1 - theirs[key].to_numpy(), rtol=0, atol=1e-12)
    # Blurry departs (the edge image's interior): against the same steps by PIL calls.
    want = [_interior_blurry(Image.fromarray(im)) for im in images]
    np.testing.assert_allclose(ip.blurry(images=_nchw(images)), want, rtol=0, atol=1e-12)


def test_gray_values_equal_cleanvisions_on_l_images(injected):
    images, _ = injected
    gray = np.stack([np.asarray(Image.fromarray(im).convert("L")) for im in images])
    theirs = _cleanvision_scores([Image.fromarray(im) for im in gray])
    for key in ("dark", "light", "low_information"):
        ours = getattr(ip, key)(images=gray[:, None])
        np.testing.assert_allclose(ours, 1 - theirs[key].to_numpy(), rtol=0, atol=1e-12)
    want = [_interior_blurry(Image.fromarray(im)) for im in gray]
    np.testing.assert_allclose(ip.blurry(images=gray[:, None]), want, rtol=0, atol=1e-12)


def test_blur_on_the_interior_finds_what_the_border_hid():
    """CleanVision's border-inclusive std hides blur on small images; the interior does not."""
    images = _blur(_textures(8, seed=11))
    ours = ip.blurry(images=_nchw(images))
    theirs = 1 - _cleanvision_scores([Image.fromarray(im) for im in images])["blurry"]
    assert (ours > theirs.to_numpy()).all()  # the border's raw brightness made them look sharp


def test_size_values_equal_cleanvisions():
    from cleanvision.issue_managers.image_property import AspectRatioProperty, SizeProperty

    rng = np.random.default_rng(3)
    sizes = rng.integers(20, 60, size=(50, 2))
    sizes[:3] = [[300, 20], [10, 10], [64, 640]]
    pil = [Image.new("L", (int(w), int(h))) for w, h in sizes]
    prop = SizeProperty()
    raw = pd.DataFrame([prop.calculate(im) for im in pil])
    theirs = prop.get_scores(raw, "odd_size", iqr_factor=3.0)["odd_size_score"].to_numpy()
    flagged = prop.mark_issue(prop.get_scores(raw, "odd_size"), "odd_size")["is_odd_size_issue"]
    ours = ip.odd_size(image_sizes=sizes)
    np.testing.assert_allclose(ours, 1 - theirs, atol=1e-12)
    assert (ip.flags(ours, ip.odd_size_threshold(sizes)) == flagged.to_numpy()).all()
    aspect = pd.DataFrame([AspectRatioProperty().calculate(im) for im in pil])["aspect_ratio"]
    np.testing.assert_allclose(ip.odd_aspect_ratio(image_sizes=sizes), 1 - aspect.to_numpy())


def _write_pngs(images: np.ndarray, folder: Path, gray_rows=()) -> list[Path]:
    """One PNG per image; gray rows saved in mode "L", as a gray photo usually is."""
    folder.mkdir(parents=True)
    paths = []
    for i, im in enumerate(images):
        image = Image.fromarray(im[..., 0] if i in gray_rows else im)
        paths.append(folder / f"{i:04d}.png")
        image.save(paths[-1])
    return paths


def test_flags_equal_imagelabs_on_the_same_files(injected, tmp_path):
    """CleanVision's Imagelab end to end on PNG files (its own decoding, modes and sizes)."""
    from cleanvision import Imagelab

    images, rows = injected
    odd = [np.asarray(Image.fromarray(images[i]).resize((96, 30))) for i in range(2)]
    files = _write_pngs(images, tmp_path / "png", gray_rows=set(rows["grayscale"]))
    for i, im in enumerate(odd):  # two clean rows stored elongated and odd-sized
        Image.fromarray(im).save(files[i])
    lab = Imagelab(filepaths=[str(f) for f in files], verbose=False)
    lab.find_issues({k: {} for k in ip.PROPERTIES}, n_jobs=1, verbose=False)
    theirs = lab.issues
    sizes = np.array([Image.open(f).size for f in files])
    pixels = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    same = np.arange(2, len(files))  # ours reads the pixels at one size: compare the rest
    arrays = {"images": _nchw(np.stack([pixels[i] for i in same])), "image_sizes": sizes}
    limits = ip.thresholds(sizes)
    for key in ip.PROPERTIES:
        wanted = theirs[f"is_{key}_issue"].to_numpy()
        if key in SIZE_KEYS:
            got = ip.flags(compute(key, arrays).values, limits[key])
            assert (got == wanted).all(), key
            np.testing.assert_allclose(
                compute(key, arrays).values, 1 - theirs[f"{key}_score"], atol=1e-12
            )
        elif key == "light":  # the mirror of dark's threshold, below CleanVision's 0.95
            got = ip.flags(compute(key, arrays).values, limits[key])
            assert (got >= wanted[same]).all() and got[rows["light"] - 2].all()
        elif key != "blurry":  # blurry departs: checked against PIL calls above
            got = ip.flags(compute(key, arrays).values, limits[key])
            assert (got == wanted[same]).all(), (key, np.flatnonzero(got != wanted[same]))
    assert set(np.flatnonzero(theirs["is_odd_aspect_ratio_issue"])) == {0, 1}


# -- input checks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "images, message",
    [
        (np.zeros((3, 4, 8, 8), np.uint8), r"^images: expected 1 \(gray\) or 3 \(RGB\) channels"),
        (np.zeros((3, 3, 8, 8), np.float32), r"^images: expected uint8 pixels"),
        (np.full((3, 1, 8, 8), 300), r"^images: expected pixels in \[0, 255\]"),
        (np.zeros((3, 8, 8), np.uint8), r"^images: expected shape \(n_examples, n_channels"),
    ],
)
def test_bad_pixels_rejected(images, message):
    with pytest.raises(InputError, match=message):
        ip.dark(images=images)


@pytest.mark.parametrize(
    "sizes, message",
    [
        (np.ones((3, 3), np.int64), r"^image_sizes: expected shape \(n_examples, 2\)"),
        (np.zeros((3, 2), np.int64), r"^image_sizes: expected sizes >= 1"),
        (np.ones((3, 2)) * 0.5, r"^image_sizes: expected integer"),
    ],
)
def test_bad_sizes_rejected(sizes, message):
    with pytest.raises(InputError, match=message):
        ip.odd_size(image_sizes=sizes)


# -- spurious correlation --------------------------------------------------------------------


def test_spurious_correlation_flags_a_property_that_predicts_the_label():
    from sklearn.model_selection import cross_val_score
    from sklearn.naive_bayes import GaussianNB

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], [60, 50, 40])
    rng.shuffle(labels)
    tells = labels * 0.3 + rng.normal(0, 0.05, labels.shape)  # brightness gives the class away
    noise = rng.random(labels.shape)
    constant = np.ones(labels.shape)
    got = ip.spurious_correlation({"dark": tells, "light": noise, "grayscale": constant}, labels)
    assert got["dark"] < ip.SPURIOUS_THRESHOLD <= got["light"]
    assert got["grayscale"] == 1.0  # a constant says nothing about the label
    # Datalab's arithmetic: 5-fold GaussianNB accuracy against the majority-class baseline.
    acc = cross_val_score(GaussianNB(), noise[:, None], labels, cv=5).mean()
    assert got["light"] == pytest.approx(min(1.0, (1 - acc) / (1 - 60 / 150)))
    # Orientation does not matter: 1 - x is the same check.
    again = ip.spurious_correlation({"dark": 1 - tells}, labels)
    assert again["dark"] == pytest.approx(got["dark"])


def test_spurious_correlation_refuses_what_it_cannot_judge():
    with pytest.raises(InputError, match="two or more classes"):
        ip.spurious_correlation({"dark": np.arange(10.0)}, np.zeros(10, np.int64))
    with pytest.raises(InputError, match="at least 5 examples"):
        ip.spurious_correlation({"dark": np.arange(6.0)}, np.array([0, 0, 1, 1, 2, 2]))
    with pytest.raises(InputError, match="dark has shape"):
        ip.spurious_correlation({"dark": np.arange(9.0)}, np.arange(10) % 2)


def test_property_summary_counts_equal_the_flags(injected):
    images, rows = injected
    labels = np.arange(len(images)) % 2
    sizes = np.tile([SIDE, SIDE], (len(images), 1))
    values = {k: getattr(ip, k)(images=_nchw(images)) for k in PIXEL_KEYS}
    values |= {k: getattr(ip, k)(image_sizes=sizes) for k in SIZE_KEYS}
    out = ip.property_summary(values, sizes, labels)
    assert list(out["image_properties"]) == list(ip.PROPERTIES)
    for key, block in out["image_properties"].items():
        assert block["threshold"] == ip.thresholds(sizes)[key]
        assert block["count"] == int(ip.flags(values[key], block["threshold"]).sum())
    assert out["image_properties"]["dark"]["count"] >= len(rows["dark"])
    spurious = out["spurious_correlation"]
    assert spurious["threshold"] == 0.3 and set(spurious["scores"]) == set(ip.PROPERTIES)
    assert spurious["flagged"] == [k for k in ip.PROPERTIES if spurious["scores"][k] < 0.3]
    one_class = ip.property_summary(values, sizes, np.zeros(len(images), np.int64))
    assert one_class["spurious_correlation"]["scores"] == {}
    assert "two or more classes" in one_class["spurious_correlation"]["why"]


def test_a_gray_dataset_has_no_gray_issue_and_a_colour_one_counts_its_gray_images(injected):
    images, rows = injected
    sizes = np.tile([SIDE, SIDE], (len(images), 1))
    labels = np.arange(len(images)) % 2
    colour = ip.property_summary({"grayscale": ip.grayscale(images=_nchw(images))}, sizes, labels)
    assert colour["image_properties"]["grayscale"]["count"] == len(rows["grayscale"])
    gray = _nchw(_gray(images))
    block = ip.property_summary({"grayscale": ip.grayscale(images=gray)}, sizes, labels)
    assert block["image_properties"]["grayscale"] == {
        "count": 0, "threshold": 0.5, "gray_images": len(images), "gray_dataset": True
    }  # fmt: skip


def test_low_information_on_tiny_images_counts_the_bits_they_can_hold():
    """8x8 gray images hold 64 values, at most 6 bits: entropy / 6, not CleanVision's / 10."""
    two = np.repeat([0, 255], 32).reshape(1, 1, 8, 8).astype(np.uint8)  # 1 bit
    four = np.repeat([0, 60, 120, 240], 16).reshape(1, 1, 8, 8).astype(np.uint8)  # 2 bits
    got = ip.low_information(images=np.concatenate([two, four]))
    np.testing.assert_allclose(got, [1 - 1 / 6, 1 - 2 / 6], atol=1e-12)
    assert ip.flags(got, ip.THRESHOLDS["low_information"]).tolist() == [True, False]
    # From 1,024 values up (32x32 gray here) it is CleanVision's 0.1 x entropy.
    wide = np.repeat(np.arange(8, dtype=np.uint8) * 30, 128).reshape(1, 1, 32, 32)  # 3 bits
    np.testing.assert_allclose(ip.low_information(images=wide), [1 - 0.3], atol=1e-12)


# -- registry and runs -----------------------------------------------------------------------


def test_image_properties_are_left_out_of_text_runs_with_the_reason():
    keys = resolve(("all",))
    text = available(keys, has_annotations=False, modality="text")
    assert not set(ip.PROPERTIES) & set(text)
    assert set(ip.PROPERTIES) <= set(available(keys, False, "image"))
    assert set(ip.PROPERTIES) <= set(available(keys, False))  # modality not known yet
    reasons = absent_reasons(keys, True, "text")
    assert list(reasons) == list(ip.PROPERTIES)
    assert all(why == IMAGE_ONLY_REASON for why in reasons.values())
    for key in ip.PROPERTIES:
        assert REGISTRY[key].label_free and REGISTRY[key].higher_is_harder
        assert not REGISTRY[key].per_run


def _image_parquet(path: Path, images: list[np.ndarray], labels: np.ndarray) -> Path:
    """A CIFAR-like parquet (img: PNG bytes, label); 2-D arrays are saved as "L" PNGs."""
    cells = []
    for im in images:
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, format="PNG")
        cells.append({"bytes": buf.getvalue(), "path": None})
    pd.DataFrame({"img": cells, "label": labels}).to_parquet(path)
    return path


def test_an_image_run_has_the_columns_and_the_summary_counts(cache_dir, tmp_path, injected):
    """A tiny run on a parquet of PNGs: one gray PNG among RGB ones, two stored at another
    size; the stored sizes reach odd_size / odd_aspect_ratio, the pixels the rest."""
    from scoring.training.pipeline import score

    images, rows = injected
    stored: list[np.ndarray] = list(images)
    stored[rows["grayscale"][0]] = images[rows["grayscale"][0]][..., 0]  # mode "L"
    stored[0] = np.asarray(Image.fromarray(images[0]).resize((96, 30)))  # elongated
    stored[1] = np.asarray(Image.fromarray(images[1]).resize((64, 64)))  # larger
    labels = np.arange(len(stored)) % 2
    source = _image_parquet(tmp_path / "imgs.parquet", stored, labels)
    test = _image_parquet(tmp_path / "test.parquet", list(_textures(6, seed=9)), np.arange(6) % 2)
    with pytest.warns(UserWarning, match="images come in 3 sizes"):
        run = score(
            ScoreConfig(
                data=DataConfig(source=str(source), test=str(test)),
                train=TrainConfig(recipe="mlp", runs=1, epochs=2),
                scores=("loss", *ip.PROPERTIES),
            ),
            cache_dir,
            show_progress=False,
        )
    frame = store.read_scores(run)
    assert list(frame.columns) == ["id", "label", "loss", *ip.PROPERTIES]
    assert frame["id"].tolist() == list(range(len(stored)))  # every row trained (--test given)
    summary = json.loads((run / "summary.json").read_text())
    sizes = np.array([[im.shape[1], im.shape[0]] for im in stored])
    limits = ip.thresholds(sizes)
    for key in ip.PROPERTIES:
        flagged = ip.flags(frame[key].to_numpy(), limits[key])
        assert summary["image_properties"][key] == {
            "count": int(flagged.sum()),
            "threshold": limits[key],
        }
    assert np.flatnonzero(
        ip.flags(frame["odd_aspect_ratio"], limits["odd_aspect_ratio"])
    ).tolist() == [0]
    assert set(np.flatnonzero(ip.flags(frame["odd_size"], limits["odd_size"]))) == {0, 1}
    for key in PIXEL_KEYS:  # the injected rows, through decoding (the gray PNG among RGB)
        assert ip.flags(frame[key], limits[key])[rows[key]].all(), key
    assert set(summary["spurious_correlation"]["scores"]) == set(ip.PROPERTIES)
    assert "absent_scores" not in summary


def test_a_text_run_has_no_image_columns_and_says_why(cache_dir, tmp_path):
    from scoring.training.pipeline import score

    rows = [
        (f"a fine film number {i}" if i % 2 else f"a dull film number {i}", i % 2)
        for i in range(30)
    ]
    path = tmp_path / "t.tsv"
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows))
    run = score(
        ScoreConfig(
            data=DataConfig(source=str(path)),
            train=TrainConfig(recipe="tfidf", runs=1, epochs=2),
            scores=("all",),
            cv_folds=2,
        ),
        cache_dir,
        show_progress=False,
    )
    frame = store.read_scores(run)
    assert not set(ip.PROPERTIES) & set(frame.columns)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["absent_scores"] == dict.fromkeys(ip.PROPERTIES, IMAGE_ONLY_REASON)
    assert "image_properties" not in summary and "spurious_correlation" not in summary
    assert not set(ip.PROPERTIES) & set(summary["scores"])
