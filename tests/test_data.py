"""Data sets: bundled, generated and the user's own CSV, with every bad input named."""

from __future__ import annotations

import numpy as np
import pytest

from runner import get_data
from runner.data import DataError, load_dataset, split_dataset


def test_get_data_returns_standardized_iris_and_one_hot_labels():
    X, Y = get_data()
    assert X.shape == (150, 4) and Y.shape == (150, 3)
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(X.std(axis=0), 1, atol=1e-4)
    assert set(np.unique(Y)) == {0.0, 1.0} and (Y.sum(axis=1) == 1).all()
    assert list(Y.sum(axis=0)) == [50, 50, 50]


@pytest.mark.parametrize(
    ("name", "shape", "classes"),
    [("wine", (178, 13), 3), ("breast_cancer", (569, 30), 2), ("digits", (1797, 64), 10)],
)
def test_bundled_data_sets(name, shape, classes):
    X, Y = get_data(name)
    assert X.shape == shape and Y.shape == (shape[0], classes)


def test_synthetic_data_is_settable_and_seeded():
    X, Y = get_data("synthetic", n_samples=200, n_features=12, n_informative=6, n_classes=4, seed=3)
    assert X.shape == (200, 12) and Y.shape == (200, 4)
    again, _ = get_data("synthetic", n_samples=200, n_features=12, n_informative=6, n_classes=4, seed=3)
    np.testing.assert_array_equal(X, again)


def test_standardization_is_fitted_on_the_training_split_only():
    split = split_dataset(load_dataset({"name": "wine"}), validation_split=0.25, seed=0)
    np.testing.assert_allclose(split.x_train.mean(axis=0), 0, atol=1e-5)
    assert np.abs(split.x_val.mean(axis=0)).max() > 1e-3  # the validation part was not used to fit
    assert len(split.x_val) == 45 and set(split.y_val) == {0, 1, 2}


def write(path, text: str, encoding="utf-8") -> str:
    path.write_bytes(text.encode(encoding))
    return str(path)


def csv(path, **options):
    return load_dataset({"name": "csv", "delimiter": ",", **options, "path": path})


def test_csv_with_byte_order_mark_crlf_and_string_labels(tmp_path):
    rows = "".join(f"{i},{i % 3 * 2.5},{['cat', 'dog', 'eel'][i % 3]}\r\n" for i in range(30))
    path = write(tmp_path / "animals.csv", "\ufeffsize,weight,kind\r\n" + rows)
    dataset = csv(path, target="kind")
    assert dataset.feature_names == ["size", "weight"]
    assert dataset.class_names == ["cat", "dog", "eel"]
    assert dataset.features.shape == (30, 2)
    assert list(dataset.labels[:4]) == [0, 1, 2, 0]


@pytest.mark.parametrize(
    ("content", "target", "message"),
    [
        ("a,b,label\n1,2,x\n3,4,y\n", "klass", "no such column in bad.csv. Its columns are: a, b, label"),
        ("a,b,label\n1,hello,x\n3,4,y\n", "label", "non-numeric feature columns: b (e.g. 'hello')"),
        ("a,b,label\n1,,x\n3,4,y\n,5,y\n", "label", "missing values in columns: a (1), b (1)"),
        ("a,b,label\n1,2,x\n3,4,x\n", "label", "has only one class ('x')"),
        ("a,b,label\n", "label", "has a header but no rows"),
    ],
)
def test_csv_mistakes_are_explained(tmp_path, content, target, message):
    with pytest.raises(DataError) as error:
        csv(write(tmp_path / "bad.csv", content), target=target)
    assert message in str(error.value)


def test_missing_csv_file_names_the_path(tmp_path):
    with pytest.raises(DataError, match=r"data.path='nope.csv': no such file"):
        csv("nope.csv", target="label")
