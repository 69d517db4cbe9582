"""Data sets -> arrays: the loader a data node's `_target_` names (scikit-learn's bundled sets, a
generated set, the user's CSV or their own function), its result checked, split and standardized.

Nothing here downloads anything or imports TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runner.config import ConfigError


class DataError(ConfigError):
    """The data set can't be used as given; the message says how to fix it."""


# Keys of a `data` node that are runner's, not arguments of its `_target_`.
OWN_KEYS = ("_target_", "name", "standardize")


@dataclass
class Dataset:
    """Features (float32, any shape per sample), integer class labels and the names of both;
    `validation` holds the loader's own validation part, where it gave one."""

    name: str
    features: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    feature_names: list[str]
    validation: tuple[np.ndarray, np.ndarray] | None = None
    standardize: bool | str = "auto"

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


@dataclass
class Split:
    """A train/validation split, standardized on the training part only where that makes sense."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def load_dataset(data: dict[str, Any]) -> Dataset:
    """Load the data set a `data` node describes: its `_target_` called with its other keys."""
    if "_target_" not in data:  # {"name": "iris"}: one of runner's own, as older records give it
        from runner.config import group_option

        data = {**group_option("data", str(data.get("name"))), **data}
    target = data["_target_"]
    arguments = {key: value for key, value in data.items() if key not in OWN_KEYS}
    name = str(data.get("name") or str(target).rsplit(".", 1)[-1])
    try:
        from hydra.utils import instantiate

        loaded = instantiate({"_target_": target}, _convert_="all", **arguments)
    except DataError:
        raise
    except Exception as error:
        cause = _root_cause(error)
        if isinstance(cause, DataError):  # runner's own loader named the problem and its fix
            raise cause from None
        raise DataError(
            f"data._target_={target} failed: {type(cause).__name__}: {str(cause).rstrip('.')}. "
            "Fix the loader or its arguments "
            f"({', '.join(f'data.{key}' for key in arguments) or 'none given'})."
        ) from None
    dataset = as_dataset(loaded, name, str(target))
    dataset.standardize = data.get("standardize", "auto")
    return dataset


def _root_cause(error: BaseException) -> BaseException:
    """The error behind Hydra's instantiate wrapper (the loader's own)."""
    while error.__cause__ is not None:
        error = error.__cause__
    return error


def as_dataset(loaded: Any, name: str, target: str) -> Dataset:
    """A loader's result as a Dataset: a Dataset, a scikit-learn Bunch (data, target), a pair
    (x, y), or {"train": (x, y), "validation": (x, y)}; labels integers or text."""
    if isinstance(loaded, Dataset):
        return loaded
    validation = None
    if isinstance(loaded, dict) and {"train", "validation"} <= set(loaded):
        (x, y), validation = _pair(loaded["train"], target, "train"), _pair(loaded["validation"], target, "validation")
    elif hasattr(loaded, "data") and hasattr(loaded, "target"):
        x, y = loaded.data, loaded.target
    else:
        x, y = _pair(loaded, target, None)
    parts = {"": (x, y)} if validation is None else {" train": (x, y), " validation": validation}
    arrays = {part: _arrays(features, labels, target, part) for part, (features, labels) in parts.items()}
    shapes = {features.shape[1:] for features, _ in arrays.values()}
    if len(shapes) > 1:
        raise DataError(
            f"data._target_={target}: the train and validation features differ in shape "
            f"({', '.join(map(str, shapes))}). "
            "Return both parts with the same shape per sample."
        )
    all_labels = np.concatenate([labels for _, labels in arrays.values()])
    class_values, codes = np.unique(all_labels, return_inverse=True)
    if len(class_values) < 2:
        raise DataError(
            f"data._target_={target} returned one class only ({class_values[0].item()!r}). "
            "A classifier needs at least two classes: check the labels it returns."
        )
    names = getattr(loaded, "target_names", None)
    if names is not None and len(names) == len(class_values) and np.issubdtype(class_values.dtype, np.integer):
        class_names = [str(names[int(value)]) for value in class_values]
    else:
        class_names = [str(value) for value in class_values]
    features = [features for features, _ in arrays.values()]
    sizes = [len(f) for f in features]
    unseen = sorted(set(codes[sizes[0] :]) - set(codes[: sizes[0]])) if validation is not None else []
    if unseen:
        raise DataError(
            f"data._target_={target}: class {class_names[unseen[0]]!r} is in the validation part but not in the "
            "train part, so the network can't learn it. Give every class training samples."
        )
    feature_names = getattr(loaded, "feature_names", None)
    if feature_names is None or len(feature_names) != int(np.prod(features[0].shape[1:])):
        feature_names = [f"x{i}" for i in range(int(np.prod(features[0].shape[1:])))]
    return Dataset(
        name=name,
        features=features[0],
        labels=codes[: sizes[0]].astype("int64"),
        class_names=class_names,
        feature_names=[str(f) for f in feature_names],
        validation=None if validation is None else (features[1], codes[sizes[0] :].astype("int64")),
    )


def _pair(value: Any, target: str, part: str | None) -> tuple[Any, Any]:
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return value[0], value[1]
    what = f"its {part!r} part" if part else "it"
    raise DataError(
        f"data._target_={target}: {what} is a {type(value).__name__}, not a pair (x, y). Return (x, y), or "
        "{'train': (x_train, y_train), 'validation': (x_val, y_val)}."
    )


def _arrays(x: Any, y: Any, target: str, part: str) -> tuple[np.ndarray, np.ndarray]:
    """Features as float32 and labels as a 1-D array, checked: lengths, emptiness, finiteness."""
    where = f"data._target_={target}{part}"
    try:
        features = np.asarray(x, dtype="float32")
    except (TypeError, ValueError) as error:
        raise DataError(f"{where}: the features are not numbers ({error}). Return numeric arrays.") from None
    labels = np.asarray(y)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    elif labels.ndim == 2:  # one-hot
        labels = labels.argmax(axis=1)
    if features.ndim < 2 or labels.ndim != 1:
        raise DataError(
            f"{where}: features of shape {features.shape} and labels of shape {labels.shape}; give features with "
            "one row per sample (n, ...) and one label per sample (n,)."
        )
    if len(features) != len(labels):
        raise DataError(
            f"{where}: {len(features)} samples of features but {len(labels)} labels. Return as many labels as samples."
        )
    if len(features) == 0:
        raise DataError(f"{where}: the data set is empty. Return at least a few samples per class.")
    if not np.isfinite(features).all():
        bad = int((~np.isfinite(features)).reshape(len(features), -1).any(axis=1).sum())
        raise DataError(f"{where}: {bad} samples have NaN or infinite features. Fill them in or drop those samples.")
    if labels.dtype.kind == "f" and not np.isfinite(labels).all():
        raise DataError(f"{where}: some labels are NaN or infinite. Give every sample a class.")
    if labels.dtype.kind in "OUS":
        labels = np.char.strip(labels.astype(str))
    return features, labels


def synthetic(
    n_samples: int, n_features: int, n_informative: int, n_classes: int, class_sep: float, seed: int
) -> Dataset:
    """A generated classification problem (sklearn.datasets.make_classification, no redundant features)."""
    from sklearn.datasets import make_classification

    try:
        features, labels = make_classification(
            n_samples=n_samples,
            n_features=n_features,
            n_informative=n_informative,
            n_redundant=0,
            n_classes=n_classes,
            class_sep=class_sep,
            random_state=seed,
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
        class_names=[str(c) for c in range(n_classes)],
        feature_names=[f"x{i}" for i in range(n_features)],
    )


def read_csv(path: str, target: str, delimiter: str = ",") -> Dataset:
    """The user's table: every column but `target` numeric; text labels are encoded."""
    import pandas as pd

    given, path = path, Path(str(path)).expanduser()
    if not path.is_file():
        raise DataError(
            f"data.path={str(given)!r}: no such file ({path.resolve()}). "
            f"Give the path of your CSV file relative to the current directory ({Path.cwd()}) or an absolute path."
        )
    try:
        # utf-8-sig drops a byte-order mark; pandas reads CRLF line endings as they are.
        frame = pd.read_csv(path, sep=delimiter, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataError(
            f"data.path={str(path)!r} can't be read as CSV: {error}. "
            "Check that it is a UTF-8 text file with a header row."
        ) from None
    frame.columns = [str(c).strip() for c in frame.columns]

    target = str(target)
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
    """The loader's own validation part, or a stratified split; standardization fitted on the
    training part, where `standardize` asks for it (auto: tabular features only)."""
    if dataset.validation is not None:
        (x_train, y_train), (x_val, y_val) = (dataset.features, dataset.labels), dataset.validation
    else:
        x_train, x_val, y_train, y_val = stratified_split(dataset.features, dataset.labels, validation_split, seed)
    if not should_standardize(dataset):
        return Split(x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val)
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x_train.reshape(len(x_train), -1))

    def scaled(x: np.ndarray) -> np.ndarray:
        return scaler.transform(x.reshape(len(x), -1)).reshape(x.shape).astype("float32")

    return Split(x_train=scaled(x_train), y_train=y_train, x_val=scaled(x_val), y_val=y_val)


def should_standardize(dataset: Dataset) -> bool:
    """data.standardize: true, false, or auto (features that are a table: one row per sample)."""
    if dataset.standardize == "auto":
        return dataset.features.ndim == 2
    return bool(dataset.standardize)


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


def check_data(settings: dict[str, Any], dataset: Dataset | None = None) -> Dataset:
    """Load a variant's data set (unless given) and make its split, to fail before any training
    where they can't be."""
    trainer = settings["trainer"]
    dataset = dataset if dataset is not None else load_dataset(settings["data"])
    if dataset.validation is None:
        stratified_split(dataset.features, dataset.labels, trainer["validation_split"], trainer["seed"])
    return dataset


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    return np.eye(n_classes, dtype="float32")[labels]


def standardized(dataset: Dataset) -> np.ndarray:
    """Features standardized over the whole set, as the notes' get_data() does."""
    from sklearn.preprocessing import StandardScaler

    return StandardScaler().fit_transform(dataset.features).astype("float32")
