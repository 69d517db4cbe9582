"""Per-layer gradient and activation telemetry: see gradients vanish or explode.

Keras 3 has no gradient logging (TensorBoard's `write_grads` is gone), so the model's
`train_step` records, on every training step, the norms of the very gradients the
optimizer applies, accumulated in a Keras metric (an element-wise mean over steps) so
that epoch values are true means over steps. At the end of each epoch a callback reads them, measures the weights
and runs a fixed probe batch through the hidden layers to count dead and saturated units.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

RELU_FAMILY = ("relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "swish")
# Output bounds beyond which a unit counts as saturated (its derivative is nearly zero).
SATURATION = {"sigmoid": (0.01, 0.99), "tanh": (-0.99, 0.99)}


def kernel_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers with a trainable kernel (Dense, convolutions...), from input to output, those of
    nested models included."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.extend(kernel_layers(layer))
        elif getattr(layer, "kernel", None) is not None and layer.kernel.trainable:
            found.append(layer)
    return found


def activation_name(layer: keras.layers.Layer) -> str | None:
    """The name of a layer's own activation (relu, sigmoid...), where it has one."""
    return getattr(getattr(layer, "activation", None), "__name__", None)


class VectorMean(keras.metrics.Metric):
    """Element-wise mean of a fixed-length vector over the steps it was updated: one
    per-layer value per element, updated with two ops however many layers there are."""

    def __init__(self, length: int, name: str = "vector_mean"):
        super().__init__(name=name)
        self.total = self.add_variable(shape=(length,), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, values):
        self.total.assign_add(tf.cast(values, self.total.dtype))
        self.count.assign_add(1.0)

    def result(self):
        return self.total / tf.maximum(self.count, 1.0)

    def reset_state(self):
        self.total.assign(tf.zeros_like(self.total))
        self.count.assign(0.0)


class GradientStats:
    """Step-wise gradient statistics in Keras metrics that the model itself does not track,
    so they stay out of `history` and are reset and read by TelemetryCallback alone.

    `values` averages, per step, [gradient norm of each kernel..., update ratio of each
    kernel..., global gradient norm]."""

    def __init__(self, layers: list[keras.layers.Layer]):
        self.layers = layers
        self.values = VectorMean(2 * len(layers) + 1, name="gradient_stats")

    def reset(self) -> None:
        self.values.reset_state()

    def result(self) -> tuple[np.ndarray, np.ndarray, float]:
        """Epoch means: per-kernel gradient norms, per-kernel update ratios, global gradient norm."""
        values = np.asarray(self.values.result())
        count = len(self.layers)
        return values[:count], values[count : 2 * count], float(values[-1])


class TelemetryMixin:
    """A train_step that records what it applies. Mixed into Sequential and functional models."""

    gradient_stats: GradientStats | None = None

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
            scaled_loss = self.optimizer.scale_loss(loss)
        weights = self.trainable_weights
        gradients = tape.gradient(scaled_loss, weights)

        stats = self.gradient_stats
        position = {id(weight): index for index, weight in enumerate(weights)}
        kernels = [layer.kernel for layer in stats.layers]
        before = [tf.identity(kernel.value) for kernel in kernels]
        self.optimizer.apply_gradients(zip(gradients, weights, strict=True))

        kernel_ids = {id(kernel) for kernel in kernels}
        squares = [tf.reduce_sum(tf.square(gradients[position[id(kernel)]])) for kernel in kernels]
        others = [
            tf.reduce_sum(tf.square(g))
            for w, g in zip(weights, gradients, strict=True)
            if id(w) not in kernel_ids and g is not None
        ]
        global_square = tf.add_n(squares + others)
        squares += [tf.reduce_sum(tf.square(kernel.value - old)) for kernel, old in zip(kernels, before, strict=True)]
        squares += [tf.reduce_sum(tf.square(old)) for old in before]
        squares += [global_square]
        norms = tf.sqrt(tf.stack(squares))
        count = len(kernels)
        ratios = norms[count : 2 * count] / (norms[2 * count : 3 * count] + 1e-12)
        stats.values.update_state(tf.concat([norms[:count], ratios, norms[-1:]], axis=0))

        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss, sample_weight=tf.shape(x)[0])
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)


@keras.saving.register_keras_serializable(package="runner")
class TelemetryModel(TelemetryMixin, keras.Model):
    """A network whose train step records gradient statistics (loading its saved file needs
    `import runner.telemetry`, which registers this class)."""


def recording(network: keras.Model, input_shape: tuple[int, ...]) -> TelemetryModel:
    """The same layers and weights as `network`, in a model whose train step records: its graph
    where it is Sequential or functional, else `network` called as one layer."""
    try:
        inputs, outputs = network.inputs, network.outputs
    except (AttributeError, ValueError):
        inputs = outputs = None
    if not inputs or not outputs:
        inputs = keras.Input(shape=tuple(input_shape))
        outputs = network(inputs)
    else:  # one tensor, not a list of one: the structure fit feeds
        inputs = inputs[0] if len(inputs) == 1 else inputs
        outputs = outputs[0] if len(outputs) == 1 else outputs
    return TelemetryModel(inputs=inputs, outputs=outputs, name=network.name)


class TelemetryCallback(keras.callbacks.Callback):
    """Reads the gradient statistics, weight norms and probe activations at every epoch end.

    `rows` holds the long-format table written to diagnostics.csv; `nonfinite_epoch` the first
    epoch (from 1) at which a gradient or a weight became NaN or Inf, which also stops training.
    """

    def __init__(self, probe: np.ndarray | None, gradients: bool = True):
        super().__init__()
        self.gradients = gradients
        self.probe = probe
        self.rows: list[dict[str, Any]] = []
        self.nonfinite_epoch: int | None = None
        self._probe_model = None

    def on_train_begin(self, logs=None):
        layers = kernel_layers(self.model)
        if self.gradients and self.model.gradient_stats is None:  # the traced train_step keeps the first one
            self.model.gradient_stats = GradientStats(layers)
        self._layers = layers
        # The hidden kernel layers of the model's own graph (not those inside a nested model).
        top = {id(layer) for layer in self.model.layers}
        self._hidden = [layer for layer in layers[:-1] if id(layer) in top]
        if self.probe is not None and self._hidden:
            self._probe_model = keras.Model(self.model.inputs[0], [layer.output for layer in self._hidden])

    def on_epoch_begin(self, epoch, logs=None):
        if self.gradients:
            self.model.gradient_stats.reset()

    def on_epoch_end(self, epoch, logs=None):
        number = epoch + 1
        finite = True
        if self.gradients:
            gradient_norms, update_ratios, global_norm = self.model.gradient_stats.result()
        for depth, layer in enumerate(self._layers, start=1):
            with np.errstate(all="ignore"):  # a diverging network's weights overflow: inf, recorded as such
                values = {"weight_norm": float(np.linalg.norm(layer.kernel.numpy()))}
            if self.gradients:
                values["gradient_norm"] = float(gradient_norms[depth - 1])
                values["update_ratio"] = float(update_ratios[depth - 1])
            finite &= all(np.isfinite(v) for v in values.values())
            self._add(number, layer.name, depth, values)
        if self.gradients:
            finite &= bool(np.isfinite(global_norm))
            self._add(number, "all", 0, {"gradient_norm": global_norm})
        if finite and self._probe_model is not None:
            self._probe_activations(number)
        if not finite and self.nonfinite_epoch is None:
            self.nonfinite_epoch = number
            self.model.stop_training = True

    def _probe_activations(self, number: int) -> None:
        outputs = self._probe_model(self.probe, training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for depth, (layer, output) in enumerate(zip(self._hidden, outputs, strict=True), start=1):
            self._add(number, layer.name, depth, activation_stats(activation_name(layer), np.asarray(output)))

    def _add(self, epoch: int, layer: str, depth: int, values: dict[str, float]) -> None:
        self.rows.extend(
            {"epoch": epoch, "layer": layer, "depth": depth, "metric": metric, "value": value}
            for metric, value in values.items()
        )


def activation_stats(activation: str | None, values: np.ndarray) -> dict[str, float]:
    """One layer's probe activations (samples, ..., units): mean, std, and the share of saturated
    outputs (sigmoid, tanh) or of dead units (ReLU family: 0 on every probe sample; a
    convolution's channel counts as one unit)."""
    stats = {"activation_mean": float(values.mean()), "activation_std": float(values.std())}
    if activation in SATURATION:
        low, high = SATURATION[activation]
        stats["saturated_fraction"] = float(((values < low) | (values > high)).mean())
    if activation in RELU_FAMILY:
        units = values.reshape(-1, values.shape[-1])
        stats["dead_fraction"] = float((units == 0).all(axis=0).mean())
    return stats


def diagnostics_table(rows: list[dict[str, Any]]) -> str:
    """diagnostics.csv's text: epoch, layer, depth, metric, value (NaN as an empty field, as
    pandas writes it); the csv module, since a deep sweep writes thousands of these files."""
    import csv
    import io

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        value = row["value"]
        writer.writerow([*(row[key] for key in COLUMNS[:-1]), "" if value is None or value != value else value])
    return text.getvalue()


COLUMNS = ("epoch", "layer", "depth", "metric", "value")


def summarize_diagnostics(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """The per-variant figures that name the effect, for metrics.json and summary.csv."""
    if not rows:
        return {}
    layers = [row for row in rows if row["depth"] > 0]
    epochs = [row["epoch"] for row in rows]

    def gradient_ratio(epoch: int) -> float | None:
        norms = sorted(
            (row["depth"], row["value"]) for row in layers if row["epoch"] == epoch and row["metric"] == "gradient_norm"
        )
        if len(norms) < 2 or norms[-1][1] == 0:
            return None
        with np.errstate(all="ignore"):  # inf / inf of a diverged network is NaN, without a warning
            return float(np.float64(norms[0][1]) / norms[-1][1])

    def final_fraction(metric: str) -> float | None:
        values = [row for row in layers if row["metric"] == metric]
        if not values:
            return None
        last = max(row["epoch"] for row in values)
        return _mean([row["value"] for row in values if row["epoch"] == last])

    global_norms = [row["value"] for row in rows if row["depth"] == 0 and row["metric"] == "gradient_norm"]
    finite = [value for value in global_norms if value == value]  # NaN skipped, as pandas' max skips it
    return {
        "gradient_ratio_first_epoch": gradient_ratio(min(epochs)),
        "gradient_ratio_last_epoch": gradient_ratio(max(epochs)),
        "dead_fraction_final": final_fraction("dead_fraction"),
        "saturated_fraction_final": final_fraction("saturated_fraction"),
        "gradient_norm_max": (float(max(finite)) if finite else float("nan")) if global_norms else None,
    }


def _mean(values: list[float]) -> float:
    """The mean of the values that are not NaN (NaN if none is), as pandas' mean takes it."""
    kept = [value for value in values if value == value]
    return float(np.mean(kept)) if kept else float("nan")
