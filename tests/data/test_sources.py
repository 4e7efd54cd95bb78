"""Tests for scoring.data: every source kind, column detection, splits, and bad input.

Fixtures are written into `tmp_path` by each test; the datasets cache goes there too.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scoring.config import DataConfig
from scoring.data import Dataset, load
from scoring.errors import InputError
from tests.conftest import SHARED_DATA  # noqa: E402


def _load(tmp_path: Path, **config) -> Dataset:
    """load() with the datasets cache inside the test's folder."""
    for key in ("source", "test"):
        if isinstance(config.get(key), Path):
            config[key] = str(config[key])
    return load(DataConfig(**config), hf_cache_dir=str(tmp_path / "hf_cache"))


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    return _write_lines(path, [json.dumps(r) for r in records])


def _png(pixels: np.ndarray) -> bytes:
    """PNG bytes of a uint8 (H, W) or (H, W, 3) array."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _rgb(seed: int, height: int = 4, width: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _image_parquet(path: Path, images: list[bytes], labels: list[int], names: list[str]) -> Path:
    """A parquet with an HF Image column and a ClassLabel column, as datasets writes it."""
    import datasets

    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=names)}
    )
    table = datasets.Dataset.from_dict(
        {"image": [{"bytes": b, "path": None} for b in images], "label": labels},
        features=features,
    )
    table.to_parquet(str(path))
    return path


def _reviews(n_good: int = 12, n_bad: int = 8) -> list[tuple[str, str]]:
    """(text, label) rows with distinct texts, two classes."""
    return [(f"review number {i} was good", "good") for i in range(n_good)] + [
        (f"review number {i} was bad", "bad") for i in range(n_good, n_good + n_bad)
    ]


# --- digits ------------------------------------------------------------------------------


def test_digits_shapes_dtypes_and_ranges(tmp_path):
    data = _load(tmp_path)
    n_train, n_test = len(data.train.ids), len(data.test.ids)
    assert n_train + n_test == 1797
    assert n_test == pytest.approx(0.2 * 1797, abs=10)
    assert data.train.inputs.shape == (n_train, 1, 8, 8)
    assert data.test.inputs.shape == (n_test, 1, 8, 8)
    # uint8 0..16, which the models take as value / 16 (converted per batch).
    assert data.train.inputs.dtype == np.uint8 and data.pixel_divisor == 16
    assert data.train.inputs.min() == 0 and data.train.inputs.max() == 16
    assert data.train.ids.dtype == np.int64 and data.train.labels.dtype == np.int64
    assert set(np.unique(data.train.labels)) == set(range(10))
    assert data.label_names == [str(k) for k in range(10)]
    assert data.modality == "image" and data.test_origin == "carved"
    assert data.input_cols == ("image",) and data.label_col == "label"
    assert data.description == "digits"
    assert len(data.fingerprint) == 16 and int(data.fingerprint, 16) >= 0
    # Carved ids are rows of the one source split: disjoint, covering it, sorted.
    assert np.intersect1d(data.train.ids, data.test.ids).size == 0
    assert np.array_equal(np.union1d(data.train.ids, data.test.ids), np.arange(1797))
    assert np.all(np.diff(data.train.ids) > 0) and np.all(np.diff(data.test.ids) > 0)


def test_digits_inputs_and_labels_follow_ids(tmp_path):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    data = _load(tmp_path)
    assert np.array_equal(data.test.inputs[:, 0], bunch.images[data.test.ids])
    assert np.array_equal(data.train.labels, bunch.target[data.train.ids])


def test_carved_split_is_deterministic_per_seed(tmp_path):
    first, again = _load(tmp_path, split_seed=3), _load(tmp_path, split_seed=3)
    other = _load(tmp_path, split_seed=4)
    assert np.array_equal(first.test.ids, again.test.ids)
    assert first.fingerprint == again.fingerprint
    assert not np.array_equal(first.test.ids, other.test.ids)
    assert first.fingerprint != other.fingerprint


def test_carved_split_is_stratified(tmp_path):
    data = _load(tmp_path, test_fraction=0.25)
    all_labels = np.concatenate([data.train.labels, data.test.labels])
    total, held = np.bincount(all_labels), np.bincount(data.test.labels, minlength=10)
    assert np.all(np.abs(held - 0.25 * total) <= 1)


def test_digits_limit_is_stratified_sorted_and_shrinks_carved_test(tmp_path):
    data = _load(tmp_path, limit=100)
    assert len(data.train.ids) == 100
    assert np.all(np.diff(data.train.ids) > 0)
    assert np.all(np.bincount(data.train.labels, minlength=10) >= 9)
    # The carved held-out share stays at test_fraction of what is used: 100 * 0.2 / 0.8.
    assert len(data.test.ids) == 25
    assert np.intersect1d(data.train.ids, data.test.ids).size == 0
    assert data.fingerprint != _load(tmp_path).fingerprint


def test_limit_larger_than_data_uses_all(tmp_path):
    assert len(_load(tmp_path, limit=10_000).train.ids) == len(_load(tmp_path).train.ids)


def test_limit_below_class_count_keeps_one_per_class(tmp_path):
    data = _load(tmp_path, limit=3)
    assert np.array_equal(np.sort(data.train.labels), np.arange(10))


def test_digits_rejects_column_overrides_and_test_file(tmp_path):
    with pytest.raises(InputError, match=r"'image' .* and 'label'"):
        _load(tmp_path, label_col="target")
    with pytest.raises(InputError, match="--test needs a file or folder source"):
        _load(tmp_path, test="x.csv")


# --- text files --------------------------------------------------------------------------


def _odd_csv(path: Path) -> Path:
    """CSV with unconventional names: an integer id, the text and a string label."""
    rows = [f'{i},"{text}, really",{label}' for i, (text, label) in enumerate(_reviews())]
    return _write_lines(path, ["RowNo,Blurb,Verdict", *rows])


def test_csv_unusual_columns_auto_detected(tmp_path):
    data = _load(tmp_path, source=_odd_csv(tmp_path / "odd.csv"))
    # RowNo is an integer but unique per row; Verdict repeats: it is the class column.
    assert data.input_cols == ("Blurb",) and data.label_col == "Verdict"
    assert data.label_names == ["bad", "good"]
    assert data.modality == "text" and data.description == f"{tmp_path.name}/odd.csv"
    text = dict(zip(data.train.ids, data.train.inputs, strict=True))
    first = int(data.train.ids[0])
    assert text[first] == f"review number {first} was {'good' if first < 12 else 'bad'}, really"


def test_csv_unusual_columns_via_overrides(tmp_path):
    source = _odd_csv(tmp_path / "odd.csv")
    auto = _load(tmp_path, source=source)
    chosen = _load(tmp_path, source=source, input_cols=("Blurb",), label_col="Verdict")
    assert chosen.input_cols == ("Blurb",) and chosen.label_col == "Verdict"
    assert np.array_equal(chosen.train.ids, auto.train.ids)
    assert chosen.fingerprint == auto.fingerprint  # the resolved choice is what is hashed
    as_text = _load(tmp_path, source=source, input_cols=("RowNo",), label_col="Verdict")
    assert as_text.fingerprint != auto.fingerprint


def test_tsv_with_header_numeric_labels_sorted_numerically(tmp_path):
    rows = [f"review {i} of the film\t{[2, 10, 1][i % 3]}" for i in range(30)]
    data = _load(tmp_path, source=_write_lines(tmp_path / "r.tsv", ["review\tstars", *rows]))
    assert data.input_cols == ("review",) and data.label_col == "stars"
    assert data.label_names == ["1", "2", "10"]
    for i, text, label in zip(data.train.ids, data.train.inputs, data.train.labels, strict=True):
        assert text == f"review {i} of the film"
        assert data.label_names[label] == str([2, 10, 1][i % 3])


def test_headerless_tsv_gets_generic_column_names(tmp_path):
    rows = [f'a "quoted" line number {i}\t{i % 2}' for i in range(20)]
    data = _load(tmp_path, source=_write_lines(tmp_path / "plain.tsv", rows))
    assert data.input_cols == ("column_0",) and data.label_col == "column_1"
    assert len(data.train.ids) + len(data.test.ids) == 20  # the first row is data, not a header
    assert data.label_names == ["0", "1"]
    assert 0 in data.train.ids or 0 in data.test.ids
    assert all(text.startswith('a "quoted" line') for text in data.train.inputs)


def test_jsonl_auto_detected(tmp_path):
    records = [{"content": text, "category": label, "n": 1} for text, label in _reviews()]
    data = _load(tmp_path, source=_write_jsonl(tmp_path / "r.jsonl", records))
    assert data.input_cols == ("content",) and data.label_col == "category"
    assert isinstance(data.train.inputs, list) and isinstance(data.train.inputs[0], str)


def test_text_fallback_takes_longest_string_column(tmp_path):
    records = [
        {"title": f"t{i}", "body": f"a much longer body of text number {i}", "tag": label}
        for i, (_, label) in enumerate(_reviews())
    ]
    data = _load(tmp_path, source=_write_jsonl(tmp_path / "r.jsonl", records))
    assert data.input_cols == ("body",) and data.label_col == "tag"


def _pairs(path: Path, first: str = "premise", second: str = "hypothesis") -> Path:
    labels = ["entailment", "neutral", "contradiction"]
    records = [
        {first: f"p{i} a man walks", second: f"h{i} someone moves", "label": labels[i % 3]}
        for i in range(30)
    ]
    return _write_jsonl(path, records)


@pytest.mark.parametrize("names", [("premise", "hypothesis"), ("sentence1", "sentence2")])
def test_sentence_pairs_auto_detected(tmp_path, names):
    data = _load(tmp_path, source=_pairs(tmp_path / "nli.jsonl", *names))
    assert data.input_cols == names
    assert data.label_names == ["contradiction", "entailment", "neutral"]
    i = int(data.train.ids[0])
    assert data.train.inputs[0] == (f"p{i} a man walks", f"h{i} someone moves")
    assert all(isinstance(pair, tuple) and len(pair) == 2 for pair in data.test.inputs)


def test_sentence_pairs_via_override(tmp_path):
    source = _pairs(tmp_path / "nli.jsonl")
    data = _load(tmp_path, source=source, input_cols=("hypothesis", "premise"))
    assert data.input_cols == ("hypothesis", "premise")
    i = int(data.train.ids[0])
    assert data.train.inputs[0] == (f"h{i} someone moves", f"p{i} a man walks")


def test_limit_is_stratified_on_imbalanced_classes(tmp_path):
    rows = [f"text {i}\t{'a' if i < 90 else 'b'}" for i in range(100)]
    source = _write_lines(tmp_path / "imb.tsv", ["text\tlabel", *rows])
    data = _load(tmp_path, source=source, limit=20)
    assert Counter(data.train.labels.tolist()) == {0: 18, 1: 2}
    assert np.all(np.diff(data.train.ids) > 0)
    tiny = _load(tmp_path, source=source, limit=2)
    assert sorted(tiny.train.labels.tolist()) == [0, 1]


# --- --test file -------------------------------------------------------------------------


def _texts_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    return _write_lines(path, ["text,label", *(f"{t},{label}" for t, label in rows)])


def test_test_file_labels_map_through_training_names(tmp_path):
    train = _texts_csv(tmp_path / "train.csv", _reviews())
    test = _texts_csv(tmp_path / "test.csv", [("fine", "good"), ("dull", "good"), ("meh", "bad")])
    data = _load(tmp_path, source=train, test=test)
    assert data.test_origin == "file"
    assert len(data.train.ids) == 20  # nothing carved out
    assert data.label_names == ["bad", "good"]
    assert data.test.inputs == ["fine", "dull", "meh"]
    assert data.test.labels.tolist() == [1, 1, 0]
    assert data.test.ids.tolist() == [0, 1, 2]
    changed = _texts_csv(tmp_path / "test2.csv", [("fine", "good"), ("meh", "bad")])
    assert _load(tmp_path, source=train, test=changed).fingerprint != data.fingerprint


def test_integer_test_labels_index_a_classlabel_training_set(tmp_path):
    import datasets

    features = datasets.Features(
        {"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    train = tmp_path / "train.parquet"
    datasets.Dataset.from_dict(
        {"sentence": [f"s{i}" for i in range(10)], "label": [i % 2 for i in range(10)]},
        features=features,
    ).to_parquet(str(train))
    test = _write_lines(tmp_path / "dev.tsv", ["sentence\tlabel", "x\t1", "y\t0"])
    data = _load(tmp_path, source=train, test=test)
    assert data.label_names == ["neg", "pos"]
    assert data.test.labels.tolist() == [1, 0]


def test_limit_selects_rows_before_decoding_images(tmp_path):
    images = [_png(_rgb(i)) for i in range(20)]
    labels = [i % 2 for i in range(20)]
    test = _image_parquet(tmp_path / "test.parquet", images[:4], labels[:4], ["a", "b"])
    good = _image_parquet(tmp_path / "good.parquet", images, labels, ["a", "b"])
    picked = _load(tmp_path, source=good, test=test, limit=6).train.ids
    unpicked = next(i for i in range(20) if i not in picked)
    images[unpicked] = b"not an image"
    broken = _image_parquet(tmp_path / "broken.parquet", images, labels, ["a", "b"])
    data = _load(tmp_path, source=broken, test=test, limit=6)  # never decodes the broken row
    assert np.array_equal(data.train.ids, picked)
    with pytest.raises(InputError, match=f"unreadable image at row id {unpicked} of the training"):
        _load(tmp_path, source=broken, test=test)


# --- images ------------------------------------------------------------------------------


def test_parquet_image_column(tmp_path):
    pixels = [_rgb(i) for i in range(12)]
    source = _image_parquet(
        tmp_path / "img.parquet", [_png(p) for p in pixels], [i % 3 for i in range(12)], list("xyz")
    )
    data = _load(tmp_path, source=source, test_fraction=0.25)
    assert data.modality == "image" and data.input_cols == ("image",)
    assert data.label_col == "label" and data.label_names == ["x", "y", "z"]
    assert data.train.inputs.shape == (9, 3, 4, 5) and data.test.inputs.shape == (3, 3, 4, 5)
    assert data.train.inputs.dtype == np.uint8 and data.pixel_divisor == 255
    for split in (data.train, data.test):
        for row, image in zip(split.ids, split.inputs, strict=True):
            assert np.array_equal(image, pixels[row].transpose(2, 0, 1))
        assert split.labels.tolist() == [i % 3 for i in split.ids]


def test_plain_bytes_struct_column_is_an_image_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    struct = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    cells = [{"bytes": _png(_rgb(i)[..., 0]), "path": f"{i}.png"} for i in range(8)]
    table = pa.table({"pic": pa.array(cells, type=struct), "kind": [i % 2 for i in range(8)]})
    pq.write_table(table, tmp_path / "plain.parquet")
    data = _load(tmp_path, source=tmp_path / "plain.parquet")
    assert data.input_cols == ("pic",) and data.label_col == "kind"
    assert data.train.inputs.shape[1:] == (1, 4, 5)  # all grayscale -> one channel


def test_mixed_modes_become_rgb_and_mixed_sizes_are_resized(tmp_path):
    images = [_png(_rgb(i)) for i in range(5)] + [_png(_rgb(9, 8, 8)[..., 0])]
    source = _image_parquet(tmp_path / "mix.parquet", images, [0, 1, 0, 1, 0, 1], ["a", "b"])
    with pytest.warns(UserWarning, match="resizing all to 5x4"):
        data = _load(tmp_path, source=source, test_fraction=0.34)
    assert data.train.inputs.shape[1:] == (3, 4, 5) and data.test.inputs.shape[1:] == (3, 4, 5)


def _image_folder(root: Path, classes: list[str], per_class: int = 3) -> Path:
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            gray = np.full((6, 6), 40 * k + i, dtype=np.uint8)
            (root / name / f"{i}.png").write_bytes(_png(gray))
    return root


def test_image_folder(tmp_path):
    root = _image_folder(tmp_path / "pets", ["cat", "dog", "emu"])
    data = _load(tmp_path, source=root, test_fraction=0.34)
    assert data.label_names == ["cat", "dog", "emu"]
    assert data.modality == "image" and data.description == "pets/"
    assert data.train.inputs.shape == (6, 1, 6, 6) and data.test.inputs.shape == (3, 1, 6, 6)
    assert Counter(data.test.labels.tolist()) == {0: 1, 1: 1, 2: 1}
    # Each class's images are filled with 40 * class + index: pixels agree with labels.
    assert np.array_equal(data.train.inputs[:, 0, 0, 0] // 40, data.train.labels)
    (root / "cat" / "0.png").write_bytes(_png(np.full((6, 6), 255, np.uint8)))
    assert _load(tmp_path, source=root, test_fraction=0.34).fingerprint != data.fingerprint


def test_image_folder_with_own_test_split(tmp_path):
    _image_folder(tmp_path / "set" / "train", ["cat", "dog"], per_class=4)
    _image_folder(tmp_path / "set" / "test", ["cat", "dog"], per_class=2)
    data = _load(tmp_path, source=tmp_path / "set")
    assert data.test_origin == "source"
    assert len(data.train.ids) == 8 and len(data.test.ids) == 4
    assert data.label_names == ["cat", "dog"]


def test_unreadable_image_in_folder_names_row_and_path(tmp_path):
    root = _image_folder(tmp_path / "pets", ["cat", "dog"])
    (root / "dog" / "1.png").write_bytes(b"garbage")
    with pytest.raises(InputError, match=r"unreadable image at row id \d+ .*dog/1\.png"):
        _load(tmp_path, source=root)


def test_unreadable_image_in_parquet_names_row(tmp_path):
    images = [_png(_rgb(i)) for i in range(6)]
    images[4] = b"\x89PNG broken"
    source = _image_parquet(tmp_path / "bad.parquet", images, [0, 1] * 3, ["a", "b"])
    test = _image_parquet(tmp_path / "t.parquet", [_png(_rgb(0))] * 2, [0, 1], ["a", "b"])
    with pytest.raises(InputError, match="unreadable image at row id 4 of the training data"):
        _load(tmp_path, source=source, test=test)


# --- shared real data --------------------------------------------------------------------


@pytest.mark.skipif(not (SHARED_DATA / "cifar10" / "train.parquet").exists(), reason="no data")
def test_cifar10_parquet_with_limit(tmp_path):
    data = _load(tmp_path, source=SHARED_DATA / "cifar10" / "train.parquet", limit=200)
    assert data.train.inputs.shape == (200, 3, 32, 32)
    assert len(data.label_names) == 10 and data.label_names[0] == "airplane"
    assert data.input_cols == ("img",) and data.label_col == "label"
    assert np.all(np.bincount(data.train.labels, minlength=10) == 20)
    assert data.description == "cifar10/train.parquet"


@pytest.mark.skipif(not (SHARED_DATA / "sst2" / "train.tsv").exists(), reason="no data")
def test_sst2_headerless_tsv_with_limit(tmp_path):
    data = _load(tmp_path, source=SHARED_DATA / "sst2" / "train.tsv", limit=100)
    assert data.input_cols == ("column_0",) and data.label_col == "column_1"
    assert data.label_names == ["0", "1"] and data.modality == "text"
    assert len(data.train.inputs) == 100 and all(isinstance(t, str) for t in data.train.inputs)
    assert data.train.ids.max() < 6920


# --- bad input ---------------------------------------------------------------------------


def test_missing_source(tmp_path):
    with pytest.raises(InputError, match=r"does not exist; expected 'digits', a .parquet"):
        _load(tmp_path, source=tmp_path / "nope.csv")


def test_missing_test_file(tmp_path):
    train = _texts_csv(tmp_path / "train.csv", _reviews())
    with pytest.raises(InputError, match=r"--test file .*does not exist"):
        _load(tmp_path, source=train, test=tmp_path / "nope.csv")


def test_empty_file(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="is empty"):
        _load(tmp_path, source=tmp_path / "empty.csv")


def test_header_only_file(tmp_path):
    with pytest.raises(InputError, match="header row but no examples"):
        _load(tmp_path, source=_write_lines(tmp_path / "h.csv", ["text,label"]))


def test_unknown_extension(tmp_path):
    (tmp_path / "data.xlsx").write_bytes(b"PK")
    with pytest.raises(InputError, match=r"unknown file type '\.xlsx'; expected one of .parquet"):
        _load(tmp_path, source=tmp_path / "data.xlsx")


def test_no_label_column(tmp_path):
    records = [{"text": f"only text {i}"} for i in range(10)]
    with pytest.raises(InputError, match=r"could not tell which column .*Pass --label-col"):
        _load(tmp_path, source=_write_jsonl(tmp_path / "t.jsonl", records))


def test_ambiguous_label_column(tmp_path):
    records = [{"text": f"t{i}", "topic": "ab"[i % 2], "source": "xyz"[i % 3]} for i in range(30)]
    with pytest.raises(InputError, match=r"several columns .*\(source, topic\).*--label-col"):
        _load(tmp_path, source=_write_jsonl(tmp_path / "t.jsonl", records))


def test_no_input_column(tmp_path):
    records = [{"a": i % 2, "label": i % 3} for i in range(10)]
    with pytest.raises(InputError, match=r"no input column found.*Pass --input-col"):
        _load(tmp_path, source=_write_jsonl(tmp_path / "t.jsonl", records))


def test_unknown_column_override_lists_columns(tmp_path):
    source = _odd_csv(tmp_path / "odd.csv")
    with pytest.raises(InputError, match=r"no column\(s\) 'txt'.*RowNo \(int\), Blurb \(str\)"):
        _load(tmp_path, source=source, input_cols=("txt",))
    with pytest.raises(InputError, match=r"no column\(s\) 'y'; available columns"):
        _load(tmp_path, source=source, label_col="y")


def test_label_column_cannot_be_input(tmp_path):
    source = _odd_csv(tmp_path / "odd.csv")
    with pytest.raises(InputError, match="both an input and the label"):
        _load(tmp_path, source=source, input_cols=("Verdict",), label_col="Verdict")


def test_image_column_in_pair(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    struct = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    cells = [{"bytes": _png(_rgb(i)), "path": None} for i in range(4)]
    table = pa.table(
        {"pic": pa.array(cells, type=struct), "caption": list("abcd"), "label": [0, 1, 0, 1]}
    )
    pq.write_table(table, tmp_path / "captioned.parquet")
    with pytest.raises(InputError, match="cannot be part of a sentence pair"):
        _load(tmp_path, source=tmp_path / "captioned.parquet", input_cols=("pic", "caption"))


def test_only_one_class(tmp_path):
    source = _texts_csv(tmp_path / "one.csv", [(f"t{i}", "same") for i in range(10)])
    with pytest.raises(InputError, match=r"only one class \('same'\).*at least two"):
        _load(tmp_path, source=source)


def test_classlabel_out_of_range(tmp_path):
    images = [_png(_rgb(i)) for i in range(4)]
    source = _image_parquet(tmp_path / "u.parquet", images, [0, 1, -1, -1], ["a", "b"])
    with pytest.raises(InputError, match=r"labels out of range .*row ids 2, 3 hold \[-1\]"):
        _load(tmp_path, source=source)


def test_unlabeled_source_test_split_falls_back_to_validation_then_carving():
    # Hub sources cannot be loaded here; this is the split choice they share with folders.
    import datasets

    from scoring.data import sources as data_module
    from scoring.data.columns import LabelCodec

    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["a", "b"])}
    )

    def table(labels: list[int]) -> datasets.Dataset:
        texts = [f"t{i}" for i in range(len(labels))]
        return datasets.Dataset.from_dict({"text": texts, "label": labels}, features=features)

    train, hidden, labeled = table([0, 1] * 5), table([-1] * 4), table([1, 0, 1])
    codec = LabelCodec.fit(train, "label")
    columns = ("text", "label")
    splits = {"train": train, "test": hidden, "validation": labeled}
    chosen = data_module._held_out(
        DataConfig(), data_module._Source(splits, "hf:x", b""), columns, codec, None
    )
    assert chosen.origin == "source" and chosen.where == "the source's 'validation' split"
    assert chosen.labels.tolist() == [1, 0, 1]
    splits = {"train": train, "test": hidden}
    chosen = data_module._held_out(
        DataConfig(), data_module._Source(splits, "hf:x", b""), columns, codec, None
    )
    assert chosen.origin == "carved" and chosen.table is None


def test_missing_labels_in_csv(tmp_path):
    rows = [f"text {i},{i % 2}" for i in range(10)] + ["text 10,", "text 11,"]
    source = _write_lines(tmp_path / "l.csv", ["text,label", *rows])
    with pytest.raises(
        InputError, match=r"2 example\(s\) in the training data have no label in column 'label'"
    ):
        _load(tmp_path, source=source)


def test_a_first_row_longer_than_the_header_is_named_not_blamed_on_labels(tmp_path):
    # pandas would take the extra leading field for an index and shift every column.
    rows = ["text 0,x,0", *(f"text {i},{i % 2}" for i in range(1, 10))]
    source = _write_lines(tmp_path / "r.csv", ["text,label", *rows])
    with pytest.raises(InputError, match="line 2 has 3 fields where the header has 2") as err:
        _load(tmp_path, source=source)
    assert "label" not in str(err.value).split(";")[0]
    tsv = _write_lines(tmp_path / "r.tsv", ["text\tlabel", "a\tb\t0", "c d\t1", "e f\t0"])
    with pytest.raises(InputError, match="a TSV value cannot hold a tab"):
        _load(tmp_path, source=tsv)


def test_a_short_first_row_is_filled_like_any_other(tmp_path):
    rows = ["text 0,0", *(f"text {i},{i % 2},note" for i in range(1, 10))]
    data = _load(tmp_path, source=_write_lines(tmp_path / "s.csv", ["text,label,note", *rows]))
    assert len(data.train.labels) + len(data.test.labels) == 10


def test_a_folder_without_images_says_so(tmp_path):
    (tmp_path / "pets" / "cat").mkdir(parents=True)
    with pytest.raises(InputError, match=r"holds no images \(it holds no files\)") as err:
        _load(tmp_path, source=tmp_path / "pets")
    assert "functools" not in str(err.value)
    (tmp_path / "pets" / "cat" / "notes.txt").write_text("hi")
    with pytest.raises(InputError, match=r"holds no images \(it holds 1 other file\(s\)\)"):
        _load(tmp_path, source=tmp_path / "pets")


def test_garbage_image_bytes_name_row_and_column_not_a_buffer(tmp_path):
    images = [_png(_rgb(i)) for i in range(6)]
    images[2] = b"no image here"
    source = _image_parquet(tmp_path / "g.parquet", images, [0, 1] * 3, ["a", "b"])
    test = _image_parquet(tmp_path / "t.parquet", [_png(_rgb(0))] * 2, [0, 1], ["a", "b"])
    with pytest.raises(InputError, match="row id 2 of the training data, column 'image'") as err:
        _load(tmp_path, source=source, test=test)
    assert "BytesIO" not in str(err.value) and "object at 0x" not in str(err.value)


def test_fractional_labels_look_like_regression(tmp_path):
    rows = [f"text {i},{i % 2}" for i in range(10)] + ["text 10,0.5"]
    source = _write_lines(tmp_path / "l.csv", ["text,label", *rows])
    with pytest.raises(InputError, match="looks like a regression target; classes must be integ"):
        _load(tmp_path, source=source)


def test_null_labels_in_jsonl(tmp_path):
    records = [{"text": f"t{i}", "label": None if i == 3 else "ab"[i % 2]} for i in range(10)]
    with pytest.raises(InputError, match=r"have no label in column 'label' \(row ids 3\)"):
        _load(tmp_path, source=_write_jsonl(tmp_path / "t.jsonl", records))


def test_empty_and_missing_texts_name_row_ids(tmp_path):
    records = [{"text": f"t{i}", "label": "ab"[i % 2]} for i in range(20)]
    for i in (1, 3, 5, 7, 9, 11, 13):
        records[i]["text"] = [None, "", "   "][i % 3]
    source = _write_jsonl(tmp_path / "t.jsonl", records)
    test = _write_jsonl(tmp_path / "test.jsonl", records[:1] + records[2:3])
    with pytest.raises(
        InputError,
        match=r"7 example\(s\) in the training data have empty or missing text in column 'text' "
        r"\(row ids 1, 3, 5, 7, 9, \.\.\. \(7 in all\)\)",
    ):
        _load(tmp_path, source=source, test=test)


def test_empty_text_in_test_file(tmp_path):
    train = _texts_csv(tmp_path / "train.csv", _reviews())
    test = _write_lines(tmp_path / "test.csv", ["text,label", "fine,good", ",bad"])
    with pytest.raises(InputError, match=r"in the --test file have empty or missing text.*ids 1\)"):
        _load(tmp_path, source=train, test=test)


def test_test_file_with_unseen_labels(tmp_path):
    train = _texts_csv(tmp_path / "train.csv", _reviews())
    test = _texts_csv(tmp_path / "test.csv", [("x", "good"), ("y", "awful")])
    with pytest.raises(
        InputError, match=r"--test file has labels not seen in training: \['awful'\]"
    ):
        _load(tmp_path, source=train, test=test)


def test_test_file_missing_columns(tmp_path):
    train = _texts_csv(tmp_path / "train.csv", _reviews())
    test = _write_lines(tmp_path / "test.tsv", ["x\t1", "y\t0"])
    with pytest.raises(InputError, match=r"--test file has no column.*no header row"):
        _load(tmp_path, source=train, test=test)


def test_test_file_with_other_input_kind(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    train = _texts_csv(tmp_path / "train.csv", _reviews())
    struct = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    cells = pa.array([{"bytes": _png(_rgb(0)), "path": None}], type=struct)
    pq.write_table(pa.table({"text": cells, "label": ["good"]}), tmp_path / "test.parquet")
    with pytest.raises(InputError, match=r"--test file holds image .*training data holds text"):
        _load(tmp_path, source=train, test=tmp_path / "test.parquet")


def test_too_few_examples_per_class_to_carve(tmp_path):
    source = _texts_csv(tmp_path / "few.csv", [*_reviews(), ("lonely", "rare")])
    with pytest.raises(
        InputError, match=r"class\(es\) \['rare'\] have fewer than 2 examples .*pass --test"
    ):
        _load(tmp_path, source=source)


@pytest.mark.parametrize("fraction", [0.0, 1.0, 1.5, -0.1])
def test_test_fraction_outside_unit_interval(tmp_path, fraction):
    with pytest.raises(InputError, match="strictly between 0 and 1"):
        _load(tmp_path, test_fraction=fraction)


def test_bad_limit_and_too_many_input_columns(tmp_path):
    with pytest.raises(InputError, match="limit must be a positive"):
        _load(tmp_path, limit=0)
    with pytest.raises(InputError, match="one column, or two for sentence pairs"):
        _load(tmp_path, source="x.csv", input_cols=("a", "b", "c"))


def test_a_new_kind_of_source_is_one_class(tmp_path, monkeypatch):
    """Adding a source = one `TableSource` subclass in the registry; nothing else changes."""
    import datasets

    from scoring.data import sources

    class InMemory(sources.TableSource):
        def claims(self, spec: str, path: Path) -> bool:
            return spec.startswith("mem:")

        def open(self, spec: str, path: Path, cache_dir: str | None) -> sources._Source:
            n = int(spec.removeprefix("mem:"))
            table = datasets.Dataset.from_dict(
                {
                    "words": [f"w{i} " * (1 + i % 3) for i in range(n)],
                    "tag": [i % 3 for i in range(n)],
                }
            )
            return sources._Source({"train": table}, spec, spec.encode())

    monkeypatch.setattr(sources, "TABLE_SOURCES", (InMemory(), *sources.TABLE_SOURCES))
    ds = _load(tmp_path, source="mem:30", input_cols=("words",), label_col="tag")
    assert ds.description == "mem:30" and ds.modality == "text" and ds.test_origin == "carved"
    assert len(ds.train.ids) + len(ds.test.ids) == 30
    assert ds.label_names == ["0", "1", "2"]
    with pytest.raises(InputError, match="does not exist"):
        _load(tmp_path, source="nothing-here.csv")


def test_an_image_above_pils_size_limit_is_refused(tmp_path, monkeypatch):
    from PIL import Image as PILImage

    root = _image_folder(tmp_path / "pets", ["cat", "dog"])  # 6x6 = 36 pixels each
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 20)  # 36 lies in PIL's warning band
    with pytest.raises(InputError, match=r"is too large: .*refused"):
        _load(tmp_path, source=root)


def test_importing_cleanlab_leaves_warnings_on(tmp_path):
    """cleanlab's import silences every warning of the process; ours must not let it."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    images = [_png(_rgb(i)) for i in range(5)] + [_png(_rgb(9, 8, 8))]
    source = _image_parquet(tmp_path / "mix.parquet", images, [0, 1, 0, 1, 0, 1], ["a", "b"])
    code = (
        "import scoring.scores, scoring.training.pipeline\n"  # both import cleanlab
        "from scoring.config import DataConfig\n"
        "from scoring.data import load\n"
        f"load(DataConfig(source={str(source)!r}, test_fraction=0.34), "
        f"hf_cache_dir={str(tmp_path / 'hf')!r})\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "resizing all to 5x4" in out.stderr
