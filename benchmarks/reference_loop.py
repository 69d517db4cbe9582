"""The notes' way, for comparison: one Python process, a hand-written loop, a fresh Sequential
model per variant, model.fit with validation_data, 10 epochs, batch 16, Iris standardized, an
80/20 stratified split, and a plot per comparison. The 11 variants of runner's normalization,
optimizer and learning_rate sweeps.

    python benchmarks/reference_loop.py OUTPUT_FOLDER
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

OPTIMIZERS = {"sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam,
              "adagrad": keras.optimizers.Adagrad}  # fmt: skip


def base_model_config():
    return {
        "HIDDEN_NODES": [32, 64],
        "HIDDEN_ACTIVATION": "relu",
        "OUTPUT_NODES": 3,
        "OUTPUT_ACTIVATION": "softmax",
        "WEIGHTS_INITIALIZER": "random_normal",
        "BIAS_INITIALIZER": "zeros",
        "NORMALIZATION": "none",
        "OPTIMIZER": "rmsprop",
        "LEARNING_RATE": 0.001,
        "EPOCHS": 10,
        "BATCH_SIZE": 16,
        "VALIDATION_SPLIT": 0.2,
        "VERBOSE": 0,
        "LOSS_FUNCTION": "categorical_crossentropy",
        "METRICS": ["accuracy"],
    }


def get_data():
    iris = load_iris()
    X = StandardScaler().fit_transform(iris.data)
    Y = keras.utils.to_categorical(iris.target, 3)
    return X, Y


def create_and_run_model(model_config, X, Y, model_name):
    model = keras.Sequential(name=model_name)
    model.add(keras.Input(shape=(X.shape[1],)))
    for layer, nodes in enumerate(model_config["HIDDEN_NODES"]):
        if layer > 0 and model_config["NORMALIZATION"] == "batch":
            model.add(keras.layers.BatchNormalization())
        model.add(
            keras.layers.Dense(
                nodes,
                activation=model_config["HIDDEN_ACTIVATION"],
                kernel_initializer=model_config["WEIGHTS_INITIALIZER"],
                bias_initializer=model_config["BIAS_INITIALIZER"],
            )
        )
    model.add(keras.layers.Dense(model_config["OUTPUT_NODES"], activation=model_config["OUTPUT_ACTIVATION"]))
    optimizer = OPTIMIZERS[model_config["OPTIMIZER"]](learning_rate=model_config["LEARNING_RATE"])
    model.compile(loss=model_config["LOSS_FUNCTION"], optimizer=optimizer, metrics=model_config["METRICS"])
    X_train, X_val, Y_train, Y_val = train_test_split(
        X, Y, stratify=Y.argmax(axis=1), test_size=model_config["VALIDATION_SPLIT"], random_state=42
    )
    return model.fit(
        X_train,
        Y_train,
        batch_size=model_config["BATCH_SIZE"],
        epochs=model_config["EPOCHS"],
        verbose=model_config["VERBOSE"],
        validation_data=(X_val, Y_val),
    )


def plot_graph(accuracy_measures, title, folder):
    plt.figure(figsize=(8, 5))
    for label, values in accuracy_measures.items():
        plt.plot(range(1, len(values) + 1), values, label=label)
    plt.title(title)
    plt.xlabel("Epoch")
    plt.ylabel("Accuracy")
    plt.legend()
    plt.savefig(os.path.join(folder, title.replace(" ", "_") + ".png"))
    plt.close()


def main(folder):
    os.makedirs(folder, exist_ok=True)
    X, Y = get_data()
    sweeps = [
        ("Compare Normalization", "NORMALIZATION", ["none", "batch"], "Normalization-"),
        ("Compare Optimizers", "OPTIMIZER", ["sgd", "rmsprop", "adam", "adagrad"], "Optimizer-"),
        ("Compare Learning Rates", "LEARNING_RATE", [0.001, 0.005, 0.01, 0.1, 0.5], "Learning-Rate-"),
    ]
    for title, key, values, prefix in sweeps:
        accuracy_measures = {}
        for value in values:
            model_config = base_model_config()
            model_config[key] = value
            history = create_and_run_model(model_config, X, Y, prefix + str(value))
            accuracy_measures[prefix + str(value)] = history.history["accuracy"]
        plot_graph(accuracy_measures, title, folder)
    print(f"{sum(len(v) for _, _, v, _ in sweeps)} variants trained", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1])
