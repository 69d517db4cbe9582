"""Per-layer gradient and activation telemetry: see gradients vanish or explode.

Keras 3 has no gradient logging (TensorBoard's `write_grads` is gone), so the model's
`train_step` records, on every training step, the norms of the very gradients the
optimizer applies, accumulated in Keras `Mean` metrics so that epoch values are true
means over steps. At the end of each epoch a callback reads them, measures the weights
and runs a fixed probe batch through the hidden layers to count dead and saturated units.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

RELU_FAMILY = ("relu", "leaky_relu", "elu", "selu", "gelu", "swish")
# Output bounds beyond which a unit counts as saturated (its derivative is nearly zero).
SATURATION = {"sigmoid": (0.01, 0.99), "tanh": (-0.99, 0.99)}


def kernel_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers with a kernel, from input to output."""
    return [layer for layer in model.layers if getattr(layer, "kernel", None) is not None]


class GradientStats:
    """Step-wise gradient statistics in Keras Mean metrics that the model itself does not track,
    so they stay out of `history` and are reset and read by TelemetryCallback alone."""

    def __init__(self, layers: list[keras.layers.Layer]):
        self.layers = layers
        self.gradient_norms = [keras.metrics.Mean(name=f"{layer.name}_gradient") for layer in layers]
        self.update_ratios = [keras.metrics.Mean(name=f"{layer.name}_update") for layer in layers]
        self.global_norm = keras.metrics.Mean(name="global_gradient")

    def metrics(self) -> list[keras.metrics.Metric]:
        return [*self.gradient_norms, *self.update_ratios, self.global_norm]

    def reset(self) -> None:
        for metric in self.metrics():
            metric.reset_state()


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

        stats.global_norm.update_state(tf.linalg.global_norm([g for g in gradients if g is not None]))
        for index, kernel in enumerate(kernels):
            stats.gradient_norms[index].update_state(tf.norm(gradients[position[id(kernel)]]))
            update = tf.norm(kernel.value - before[index])
            stats.update_ratios[index].update_state(update / (tf.norm(before[index]) + 1e-12))

        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss, sample_weight=tf.shape(x)[0])
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)


class TelemetrySequential(TelemetryMixin, keras.Sequential):
    pass


class TelemetryModel(TelemetryMixin, keras.Model):
    pass


class TelemetryCallback(keras.callbacks.Callback):
    """Reads the gradient statistics, weight norms and probe activations at every epoch end.

    `rows` holds the long-format table written to diagnostics.csv; `nonfinite_epoch` the first
    epoch (from 1) at which a gradient or a weight became NaN or Inf, which also stops training.
    """

    def __init__(self, probe: np.ndarray | None, activation: str, gradients: bool = True):
        super().__init__()
        self.gradients = gradients
        self.probe = probe
        self.activation = activation
        self.rows: list[dict[str, Any]] = []
        self.nonfinite_epoch: int | None = None
        self._probe_model = None

    def on_train_begin(self, logs=None):
        layers = kernel_layers(self.model)
        if self.gradients and self.model.gradient_stats is None:  # the traced train_step keeps the first one
            self.model.gradient_stats = GradientStats(layers)
        self._layers = layers
        self._hidden = layers[:-1]
        if self.probe is not None and self._hidden:
            self._probe_model = keras.Model(self.model.inputs[0], [layer.output for layer in self._hidden])

    def on_epoch_begin(self, epoch, logs=None):
        if self.gradients:
            self.model.gradient_stats.reset()

    def on_epoch_end(self, epoch, logs=None):
        stats = self.model.gradient_stats if self.gradients else None
        number = epoch + 1
        finite = True
        for depth, layer in enumerate(self._layers, start=1):
            values = {"weight_norm": float(np.linalg.norm(layer.kernel.numpy()))}
            if stats is not None:
                values["gradient_norm"] = float(stats.gradient_norms[depth - 1].result())
                values["update_ratio"] = float(stats.update_ratios[depth - 1].result())
            finite &= all(np.isfinite(v) for v in values.values())
            self._add(number, layer.name, depth, values)
        if stats is not None:
            global_norm = float(stats.global_norm.result())
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
            values = np.asarray(output)
            stats = {"activation_mean": float(values.mean()), "activation_std": float(values.std())}
            if self.activation in SATURATION:
                low, high = SATURATION[self.activation]
                stats["saturated_fraction"] = float(((values < low) | (values > high)).mean())
            if self.activation in RELU_FAMILY:
                stats["dead_fraction"] = float((values == 0).all(axis=0).mean())
            self._add(number, layer.name, depth, stats)

    def _add(self, epoch: int, layer: str, depth: int, values: dict[str, float]) -> None:
        self.rows.extend(
            {"epoch": epoch, "layer": layer, "depth": depth, "metric": metric, "value": value}
            for metric, value in values.items()
        )


def summarize_diagnostics(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """The per-variant figures that name the effect, for metrics.json and summary.csv."""
    import pandas as pd

    if not rows:
        return {}
    table = pd.DataFrame(rows)
    layers = table[table["depth"] > 0]
    first, last = int(table["epoch"].min()), int(table["epoch"].max())

    def gradient_ratio(epoch: int) -> float | None:
        norms = layers[(layers["epoch"] == epoch) & (layers["metric"] == "gradient_norm")].sort_values("depth")
        if len(norms) < 2 or norms["value"].iloc[-1] == 0:
            return None
        return float(norms["value"].iloc[0] / norms["value"].iloc[-1])

    def final_fraction(metric: str) -> float | None:
        values = layers[layers["metric"] == metric]
        if values.empty:
            return None
        return float(values[values["epoch"] == values["epoch"].max()]["value"].mean())

    global_norms = table[(table["depth"] == 0) & (table["metric"] == "gradient_norm")]["value"]
    return {
        "gradient_ratio_first_epoch": gradient_ratio(first),
        "gradient_ratio_last_epoch": gradient_ratio(last),
        "dead_fraction_final": final_fraction("dead_fraction"),
        "saturated_fraction_final": final_fraction("saturated_fraction"),
        "gradient_norm_max": float(global_norms.max()) if len(global_norms) else None,
    }
