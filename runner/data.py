"""Data sets -> arrays: scikit-learn's bundled sets, a generated one, or the user's CSV.

Nothing here downloads anything or imports TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runner.config import ConfigError

BUNDLED = {
    "iris": "load_iris",
    "wine": "load_wine",
    "breast_cancer": "load_breast_cancer",
    "digits": "load_digits",
}


class DataError(ConfigError):
    """The data set can't be used as given; the message says how to fix it."""


@dataclass
class Dataset:
    """Features (float32), integer class labels and the names of both."""

    name: str
    features: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    feature_names: list[str]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


@dataclass
class Split:
    """A stratified train/validation split, standardized on the training part only."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def load_dataset(data: dict[str, Any]) -> Dataset:
    """Load the data set a `data` config node describes."""
    name = data["name"]
    if name in BUNDLED:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, BUNDLED[name])()
        return Dataset(
            name=name,
            features=bunch.data.astype("float32"),
            labels=bunch.target.astype("int64"),
            class_names=[str(c) for c in bunch.target_names],
            feature_names=[str(f) for f in bunch.feature_names],
        )
    if name == "synthetic":
        return _make_synthetic(data)
    if name == "csv":
        return _read_csv(data)
    raise DataError(f"Unknown data set {name!r}. Choose one of: {', '.join([*BUNDLED, 'synthetic', 'csv'])}.")


def _make_synthetic(data: dict[str, Any]) -> Dataset:
    from sklearn.datasets import make_classification

    try:
        features, labels = make_classification(
            n_samples=data["n_samples"],
            n_features=data["n_features"],
            n_informative=data["n_informative"],
            n_redundant=0,
            n_classes=data["n_classes"],
            class_sep=data["class_sep"],
            random_state=data["seed"],
        )
    except ValueError as error:
        raise DataError(
            f"data=synthetic can't be generated with these settings: {error}. "
            "Adjust data.n_features, data.n_informative or data.n_classes."
        ) from None
    return Dataset(
        name="synthetic",
        features=features.astype("float32"),
        labels=labels.astype("int64"),
        class_names=[str(c) for c in range(data["n_classes"])],
        feature_names=[f"x{i}" for i in range(data["n_features"])],
    )


def _read_csv(data: dict[str, Any]) -> Dataset:
    import pandas as pd

    path = Path(str(data["path"])).expanduser()
    if not path.is_file():
        raise DataError(
            f"data.path={str(data['path'])!r}: no such file ({path.resolve()}). "
            f"Give the path of your CSV file relative to the current directory ({Path.cwd()}) or an absolute path."
        )
    try:
        # utf-8-sig drops a byte-order mark; pandas reads CRLF line endings as they are.
        frame = pd.read_csv(path, sep=data.get("delimiter", ","), encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataError(
            f"data.path={str(path)!r} can't be read as CSV: {error}. "
            "Check that it is a UTF-8 text file with a header row."
        ) from None
    frame.columns = [str(c).strip() for c in frame.columns]

    target = str(data["target"])
    if target not in frame.columns:
        raise DataError(
            f"data.target={target!r}: no such column in {path.name}. Its columns are: {', '.join(frame.columns)}. "
            "Set data.target to the label column."
        )
    if frame.empty:
        raise DataError(f"{path.name} has a header but no rows. Add samples to the file.")
    missing = frame.isna().sum()
    missing = missing[missing > 0]
    if len(missing):
        cells = ", ".join(f"{column} ({count})" for column, count in missing.items())
        raise DataError(
            f"{path.name} has missing values in columns: {cells}. Fill them in or drop those rows before training."
        )

    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise DataError(
            f"{path.name} has no feature columns besides the target {target!r}. Add at least one numeric column."
        )
    non_numeric = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if non_numeric:
        examples = ", ".join(f"{c} (e.g. {features[c].iloc[0]!r})" for c in non_numeric[:5])
        raise DataError(
            f"{path.name} has non-numeric feature columns: {examples}. "
            "Encode them as numbers or drop them; only the target column may hold text labels."
        )
    infinite = [c for c in features.columns if not np.isfinite(features[c].to_numpy(dtype="float64")).all()]
    if infinite:
        raise DataError(
            f"{path.name} has infinite values (inf, -inf) in columns: {', '.join(infinite)}. "
            "Replace them with finite numbers or drop those rows before training."
        )

    target_values = frame[target]
    if not pd.api.types.is_numeric_dtype(target_values):
        target_values = target_values.astype(str).str.strip()
    class_names, labels = np.unique(target_values.to_numpy(), return_inverse=True)
    if len(class_names) < 2:
        raise DataError(
            f"data.target={target!r} has only one class ({class_names[0]!r}) in {path.name}. "
            "A classifier needs at least two classes: check the target column."
        )
    return Dataset(
        name=path.stem,
        features=features.to_numpy(dtype="float32"),
        labels=labels.astype("int64"),
        class_names=[str(c) for c in class_names],
        feature_names=list(features.columns),
    )


def split_dataset(dataset: Dataset, validation_split: float, seed: int) -> Split:
    """Stratified train/validation split; standardization is fitted on the training split only."""
    from sklearn.preprocessing import StandardScaler

    x_train, x_val, y_train, y_val = stratified_split(dataset.features, dataset.labels, validation_split, seed)
    scaler = StandardScaler().fit(x_train)
    return Split(
        x_train=scaler.transform(x_train).astype("float32"),
        y_train=y_train,
        x_val=scaler.transform(x_val).astype("float32"),
        y_val=y_val,
    )


def stratified_split(features: np.ndarray, labels: np.ndarray, validation_split: float, seed: int):
    """train_test_split stratified by class, with a clear error where the data is too small for it."""
    from sklearn.model_selection import train_test_split

    counts = np.bincount(labels)
    counts = counts[counts > 0]
    n_val = int(np.ceil(validation_split * len(labels)))
    if counts.min() < 2:
        raise DataError(
            f"A class has only {counts.min()} sample; a stratified validation split needs at least 2 per class. "
            "Add samples or drop that class."
        )
    if n_val < len(counts) or len(labels) - n_val < len(counts):
        raise DataError(
            f"trainer.validation_split={validation_split} leaves {n_val} validation samples for {len(counts)} classes "
            f"out of {len(labels)} samples; each split needs one sample per class. Change trainer.validation_split."
        )
    return train_test_split(features, labels, test_size=validation_split, stratify=labels, random_state=seed)


def check_data(settings: dict[str, Any]) -> None:
    """Load a variant's data set and make its split, to fail before any training where they can't be."""
    trainer = settings["trainer"]
    dataset = load_dataset(settings["data"])
    stratified_split(dataset.features, dataset.labels, trainer["validation_split"], trainer["seed"])


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    return np.eye(n_classes, dtype="float32")[labels]


def standardized(dataset: Dataset) -> np.ndarray:
    """Features standardized over the whole set, as the notes' get_data() does."""
    from sklearn.preprocessing import StandardScaler

    return StandardScaler().fit_transform(dataset.features).astype("float32")
