"""The plain-Keras counterpart of one compute-bound runner run: the same synthetic data, split and
network, one model.fit. Prints the seconds fit took.

    python benchmarks/plain_fit.py
"""

import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

# What runner's command in benchmarks/sweep_speed.py (SINGLE) sets: 40,000 x 64 for training.
SAMPLES, FEATURES, INFORMATIVE, CLASSES, LAYERS, UNITS, EPOCHS, BATCH = 50_000, 64, 10, 3, 3, 512, 5, 64


def main() -> None:
    x, y = make_classification(n_samples=SAMPLES, n_features=FEATURES, n_informative=INFORMATIVE, n_redundant=0,
                               n_classes=CLASSES, random_state=0)  # fmt: skip
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.2, stratify=y, random_state=42)
    scaler = StandardScaler().fit(x_train)
    x_train, x_val = scaler.transform(x_train).astype("float32"), scaler.transform(x_val).astype("float32")
    keras.utils.set_random_seed(42)
    model = keras.Sequential(
        [keras.Input((FEATURES,))]
        + [keras.layers.Dense(UNITS, activation="relu", kernel_initializer="random_normal") for _ in range(LAYERS)]
        + [keras.layers.Dense(CLASSES, activation="softmax")]
    )
    model.compile(optimizer=keras.optimizers.RMSprop(0.001), loss="categorical_crossentropy", metrics=["accuracy"])
    started = time.perf_counter()
    model.fit(x_train, keras.utils.to_categorical(y_train, CLASSES), batch_size=BATCH, epochs=EPOCHS, verbose=0,
              validation_data=(x_val, keras.utils.to_categorical(y_val, CLASSES)))  # fmt: skip
    print(f"fit {time.perf_counter() - started:.3f} s")


if __name__ == "__main__":
    main()
