"""Your own model and data for runner, by example: a small convolutional network on scikit-learn's
digits as 8x8x1 images. runner finds them through `_target_` (conf/experiment/digits_cnn.yaml):

    python -m runner -m experiment=digits_cnn      # from the folder that holds examples/
    python -m runner model=custom model._target_=examples.digits_cnn.small_cnn +model.filters=16 \
        data=custom data._target_=examples.digits_cnn.digit_images
"""

from __future__ import annotations

import keras
import numpy as np


def digit_images(n_samples: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 digits as images (n, 8, 8, 1) with pixels in [0, 1], and their labels 0-9;
    the first `n_samples` of them where given (a quick run)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images[..., np.newaxis] / 16.0).astype("float32")
    return images[:n_samples], digits.target[:n_samples]


def small_cnn(
    input_shape: tuple[int, ...],
    n_classes: int,
    filters: int = 16,
    batch_norm: bool = False,
    kernel_initializer: str = "he_normal",
    dense_units: int = 32,
) -> keras.Model:
    """Two blocks of 3x3 convolution (ReLU), optional batch normalization and 2x2 pooling, then a
    dense layer and the softmax output: an uncompiled keras.Model, as runner expects."""
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for block, width in enumerate((filters, 2 * filters), start=1):
        x = keras.layers.Conv2D(
            width, 3, padding="same", activation="relu", kernel_initializer=kernel_initializer, name=f"conv_{block}"
        )(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(name=f"batch_norm_{block}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool_{block}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(dense_units, activation="relu", kernel_initializer=kernel_initializer, name="dense")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs, name="small_cnn")
