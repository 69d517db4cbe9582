"""Packed seeds: the seeds of one variant of the built-in network trained together as one Keras
model with a member axis on every weight (inputs and outputs (batch, member, ...); inside, the
activations are member-major, (member, batch, units), so each Dense is one batched matmul).
Member i has the split, initial weights and sample order of a separate run with seed i; its loss,
gradients, optimizer slots, normalization statistics and telemetry are its own."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from runner.data import Split, one_hot
from runner.fitting import adopt_state, epoch_batches, keep, take_kept, traced_settings
from runner.model import build_optimizer, mlp_layers
from runner.packs import DRAWN, rate_packable
from runner.telemetry import VectorMean, activation_stats


@dataclass
class MemberOutcome:
    """What a packed member's training gave: its history, telemetry rows and divergence epoch."""

    history: dict[str, list[float]]
    rows: list[dict[str, Any]] = field(default_factory=list)
    nonfinite_epoch: int | None = None
    seconds: float = 0.0
    error: str | None = None
    traceback: str | None = None
    members: int = 1  # the pack's size
    pack_seconds: float = 0.0  # the pack's training time; `seconds` is its share per member
    pruned_epoch: int | None = None  # where a search's pruner stopped the pack
    scores: dict[str, float] | None = None  # trainer.evaluate_train: train_eval_*, val_eval_*


class SwapAxes(keras.layers.Layer):
    """(batch, member, units) <-> (member, batch, units)."""

    def call(self, inputs):
        return keras.ops.transpose(inputs, (1, 0, 2))


class PackedDense(keras.layers.Layer):
    """M Dense layers side by side on member-major inputs (M, batch, in): kernel (M, in, units),
    bias (M, units), one batched matmul. `batch_major` outputs (batch, M, units), transposed before
    the activation: Keras computes a softmax output's cross-entropy from its logits, as alone."""

    def __init__(
        self, members: int, units: int, activation, l1: float = 0.0, l2: float = 0.0, batch_major=False, **kwargs
    ):
        super().__init__(**kwargs)
        self.members, self.units, self.batch_major = members, units, batch_major
        self.activation = keras.activations.get(activation)
        self.l1, self.l2 = l1, l2

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(self.members, input_shape[-1], self.units), initializer="zeros", name="kernel"
        )
        self.bias = self.add_weight(shape=(self.members, self.units), initializer="zeros", name="bias")

    def call(self, inputs):
        outputs = tf.matmul(inputs, self.kernel) + self.bias[:, None, :]
        return self.activation(tf.transpose(outputs, (1, 0, 2)) if self.batch_major else outputs)

    def penalty(self):
        """Each member's kernel penalty, as Keras' L1/L2 regularizers compute it: shape (M,)."""
        total = tf.zeros((self.members,))
        if self.l1:
            total += self.l1 * tf.reduce_sum(tf.abs(self.kernel), axis=[1, 2])
        if self.l2:
            total += self.l2 * tf.reduce_sum(tf.square(self.kernel), axis=[1, 2])
        return total


class MemberScale(keras.layers.Layer):
    """Per-member gamma and beta (M, units): layer normalization's affine part, kept per member."""

    def __init__(self, members: int, **kwargs):
        super().__init__(**kwargs)
        self.members = members

    def build(self, input_shape):
        self.gamma = self.add_weight(shape=(self.members, input_shape[-1]), initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=(self.members, input_shape[-1]), initializer="zeros", name="beta")

    def call(self, inputs):
        return inputs * self.gamma[:, None, :] + self.beta[:, None, :]


class MemberDropout(keras.layers.Layer):
    """Dropout whose mask for member i is drawn from member i's seed alone (and the step, the
    layer, the sample's place in the batch, the unit), so that a member trains the same in any
    pack, whatever the other members; Keras' Dropout would draw one mask for the whole pack."""

    def __init__(self, rate: float, seeds: list[int], **kwargs):
        super().__init__(**kwargs)
        self.rate, self.seeds = float(rate), [int(seed) for seed in seeds]

    def build(self, input_shape):
        self.step = self.add_weight(shape=(), dtype="int64", initializer="zeros", trainable=False, name="step")
        self.salt = sum(ord(c) * 31**i for i, c in enumerate(self.name)) % (2**31)

    def call(self, inputs, training=False):
        if not training or self.rate <= 0:
            return inputs
        self.step.assign_add(1)
        shape = tf.shape(inputs, out_type=tf.int64)  # member-major: (M, batch, units)
        member = tf.constant(self.seeds, tf.int64)[:, None, None]
        sample = tf.range(shape[1])[None, :, None]
        unit = tf.range(shape[2])[None, None, :]
        key = _mix(_mix(_mix(member * 0x9E3779B1 + self.salt) + self.step) + sample * 0x85EBCA77) + unit
        uniform = tf.cast(tf.math.floormod(_mix(key), 2**24), inputs.dtype) / float(2**24)
        return tf.where(uniform >= self.rate, inputs / (1.0 - self.rate), tf.zeros_like(inputs))


def _mix(value):
    """A 32-bit integer hash (murmur3's finalizer) on int64 tensors, kept within 32 bits."""
    mask = tf.constant(0xFFFFFFFF, tf.int64)

    def shifted(bits: int):
        return tf.bitwise.bitwise_xor(value, tf.bitwise.right_shift(value, tf.constant(bits, tf.int64)))

    value = tf.bitwise.bitwise_and(value, mask)
    value = tf.bitwise.bitwise_and(shifted(16) * 0x85EBCA6B, mask)
    value = tf.bitwise.bitwise_and(shifted(13) * 0xC2B2AE35, mask)
    return shifted(16)


class MemberMean(keras.metrics.Metric):
    """Per-member running means over an epoch's samples: one (M,) vector, weighted by batch size
    as Keras' loss tracker and accuracy weigh them."""

    def __init__(self, members: int, name: str):
        super().__init__(name=name)
        self.total = self.add_variable(shape=(members,), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, sums, count):
        self.total.assign_add(tf.cast(sums, self.total.dtype))
        self.count.assign_add(tf.cast(count, self.count.dtype))

    def result(self):
        return self.total / tf.maximum(self.count, 1.0)

    def reset_state(self):
        self.total.assign(tf.zeros_like(self.total))
        self.count.assign(0.0)


class PackedModel(keras.Model):
    """The packed network with a train and test step that keep every member's loss its own: the
    loss is the sum of the members' losses, so each member's gradient is that of its own loss."""

    def __init__(self, *args, members: int = 1, clipnorm=None, global_clipnorm=None, scaled=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.members = members
        # Each member's SGD learning rate, where they differ: its gradient is scaled by it and the
        # optimizer's rate is 1 (SGD's update is then each member's own, to the bit).
        self.member_rates = (
            keras.Variable(np.ones(members, "float32"), trainable=False, name="member_rates") if scaled else None
        )
        self.clipnorm, self.global_clipnorm = clipnorm, global_clipnorm  # applied per member here
        self.loss_mean = MemberMean(members, "loss")
        self.accuracy_mean = MemberMean(members, "accuracy")
        self.kernels = [layer for layer in self.layers if isinstance(layer, PackedDense)]
        self.gradient_stats: VectorMean | None = None  # set by PackRecorder where telemetry asks

    @property
    def metrics(self):
        return [self.loss_mean, self.accuracy_mean]

    def member_losses(self, y, y_pred):
        """Each member's mean cross-entropy over the batch plus its kernel penalty: shape (M,)."""
        entropy = keras.losses.categorical_crossentropy(y, y_pred)  # (batch, M)
        return tf.reduce_mean(entropy, axis=0) + tf.add_n([layer.penalty() for layer in self.kernels])

    def _update(self, x, y, y_pred, losses):
        batch = tf.shape(x)[0]
        hits = keras.metrics.categorical_accuracy(y, y_pred)  # (batch, M)
        self.loss_mean.update_state(losses * tf.cast(batch, losses.dtype), batch)
        self.accuracy_mean.update_state(tf.reduce_sum(tf.cast(hits, "float32"), axis=0), batch)
        return {"loss": self.loss_mean.result(), "accuracy": self.accuracy_mean.result()}

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            losses = self.member_losses(y, y_pred)
            total = tf.reduce_sum(losses)
        weights = self.trainable_weights
        gradients = tape.gradient(total, weights)
        if self.gradient_stats is None:
            self.optimizer.apply_gradients(zip(self._scaled(self._clipped(gradients)), weights, strict=True))
        else:
            self._apply_and_record(weights, gradients)
        return self._update(x, y, y_pred, losses)

    def _clipped(self, gradients):
        """Keras' clipnorm (each weight's gradient) or global_clipnorm (all of them), as the
        optimizer computes them, but over each member's part of the gradients alone."""
        if not self.clipnorm and not self.global_clipnorm:
            return gradients
        flat = [tf.reshape(g, (self.members, -1)) for g in gradients]
        squares = [tf.reduce_sum(tf.square(g), axis=1, keepdims=True) for g in flat]
        if self.clipnorm:
            clipped = []
            for g, square in zip(flat, squares, strict=True):
                norm = tf.where(square > 0, tf.sqrt(tf.where(square > 0, square, tf.ones_like(square))), square)
                clipped.append(g * self.clipnorm / tf.maximum(norm, self.clipnorm))
        else:
            norm = tf.sqrt(tf.add_n(squares))
            scale = self.global_clipnorm * tf.minimum(1.0 / norm, 1.0 / self.global_clipnorm) + (norm - norm)
            clipped = [g * scale for g in flat]
        return [tf.reshape(g, tf.shape(original)) for g, original in zip(clipped, gradients, strict=True)]

    def _scaled(self, gradients):
        """Each member's part of every gradient times its own learning rate (member_rates)."""
        if self.member_rates is None:
            return gradients
        rates = self.member_rates[:, None]
        return [tf.reshape(tf.reshape(g, (self.members, -1)) * rates, tf.shape(g)) for g in gradients]

    def _apply_and_record(self, weights, gradients):
        members = self.members

        def per_member(tensor):  # every packed weight is member-major: (M, ...) or (M * units,)
            return tf.reduce_sum(tf.square(tf.reshape(tensor, (members, -1))), axis=1)

        position = {id(weight): index for index, weight in enumerate(weights)}
        kernels = [layer.kernel for layer in self.kernels]
        before = [tf.identity(kernel.value) for kernel in kernels]
        self.optimizer.apply_gradients(zip(self._scaled(self._clipped(gradients)), weights, strict=True))
        squares = [per_member(gradients[position[id(kernel)]]) for kernel in kernels]
        kernel_ids = {id(kernel) for kernel in kernels}
        others = [
            per_member(g) for w, g in zip(weights, gradients, strict=True) if id(w) not in kernel_ids and g is not None
        ]
        global_square = tf.add_n(squares + others)
        steps = [per_member(kernel.value - old) for kernel, old in zip(kernels, before, strict=True)]
        sizes = [per_member(old) for old in before]
        norms = tf.sqrt(tf.stack(squares))  # (K, M)
        ratios = tf.sqrt(tf.stack(steps)) / (tf.sqrt(tf.stack(sizes)) + 1e-12)
        stats = tf.concat([norms, ratios, tf.sqrt(global_square)[None]], axis=0)
        self.gradient_stats.update_state(tf.reshape(stats, (-1,)))

    def test_step(self, data):
        x, y = data
        y_pred = self(x, training=False)
        return self._update(x, y, y_pred, self.member_losses(y, y_pred))


def packed_network(
    settings: dict[str, Any],
    seeds: list[int],
    n_features: int,
    n_classes: int,
    models: list[dict[str, Any]] | None = None,
    learning_rates: list[float] | None = None,
    **clipping,
) -> PackedModel:
    """The packed twin of the built-in network (runner.model.mlp_layers) with member i's initial
    weights drawn as a separate run with seed i (and model settings `models[i]`) draws them: Dense
    layers as PackedDense, batch normalization over (member, unit) features, layer normalization
    with per-member gamma and beta."""
    members = len(seeds)
    layer_sets = []
    for seed, member in zip(seeds, models or [settings] * members, strict=True):
        keras.utils.set_random_seed(seed)  # the layers' initializers draw their seeds as they are made
        layer_sets.append(mlp_layers({**member, "n_classes": n_classes}))
    blocks, output_layer = layer_sets[0]
    initial: dict[str, list[np.ndarray]] = {}
    for member_blocks, member_output in layer_sets:
        width = n_features
        for layer in [*(layer for block in member_blocks for layer in block), member_output]:
            if isinstance(layer, keras.layers.Dense):
                kernel = layer.kernel_initializer((width, layer.units), dtype="float32")
                bias = layer.bias_initializer((layer.units,), dtype="float32")
                initial.setdefault(layer.name, []).append((np.asarray(kernel), np.asarray(bias)))
                width = layer.units

    inputs = keras.Input(shape=(members, n_features))
    hidden = SwapAxes()(inputs)
    for index, block in enumerate(blocks):
        skip = hidden
        for layer in block:
            hidden = _packed_layer(layer, members, hidden, seeds)
        if settings.get("residual") and index > 0 and skip.shape[-1] == hidden.shape[-1]:
            hidden = keras.layers.Add(name=f"residual_{index + 1}")([skip, hidden])
    outputs = _packed_layer(output_layer, members, hidden, seeds, output=True)
    scaled = learning_rates is not None
    model = PackedModel(inputs=inputs, outputs=outputs, members=members, scaled=scaled, **clipping)
    if scaled:
        model.member_rates.assign(np.asarray(learning_rates, dtype="float32"))
    for layer in model.kernels:
        kernels, biases = zip(*initial[layer.name], strict=True)
        layer.kernel.assign(np.stack(kernels))
        layer.bias.assign(np.stack(biases))
    return model


def _packed_layer(layer: keras.layers.Layer, members: int, hidden, seeds: list[int], output: bool = False):
    """`hidden` (member-major) through the packed counterpart of one layer of the built-in network;
    the output layer's result is batch-major."""
    if isinstance(layer, keras.layers.Dense):
        regularizer = layer.kernel_regularizer
        if regularizer is not None and not isinstance(
            regularizer, (keras.regularizers.L1, keras.regularizers.L2, keras.regularizers.L1L2)
        ):
            raise PackingError(f"a {type(regularizer).__name__} kernel regularizer")
        l1, l2 = float(getattr(regularizer, "l1", 0.0)), float(getattr(regularizer, "l2", 0.0))
        return PackedDense(members, layer.units, layer.activation, l1, l2, output, name=layer.name)(hidden)
    width = hidden.shape[-1]
    if isinstance(layer, keras.layers.BatchNormalization):  # over (member, unit) features: batch-major
        hidden = keras.layers.Reshape((members * width,))(SwapAxes()(hidden))
        hidden = keras.layers.BatchNormalization(momentum=layer.momentum, epsilon=layer.epsilon, name=layer.name)(
            hidden
        )
        return SwapAxes()(keras.layers.Reshape((members, width))(hidden))
    if isinstance(layer, keras.layers.LayerNormalization):
        hidden = keras.layers.LayerNormalization(epsilon=layer.epsilon, center=False, scale=False, name=layer.name)(
            hidden
        )
        return MemberScale(members, name=f"{layer.name}_scale")(hidden)
    if isinstance(layer, keras.layers.Dropout):
        return MemberDropout(layer.rate, seeds, name=layer.name)(hidden)
    raise PackingError(f"a {type(layer).__name__} layer")


def member_splits(dataset, settings: dict[str, Any], seeds: list[int]) -> list[Split]:
    """Each member's split, as a separate run with its seed makes it."""
    from runner.data import split_dataset

    return [split_dataset(dataset, settings["trainer"]["validation_split"], seed) for seed in seeds]


def packed_pipeline(
    splits: list[Split], seeds: list[int], n_classes: int, batch_size: int, epochs: int
) -> tuple[tf.data.Dataset, tf.data.Dataset, int]:
    """Batches of (batch, M, features), member i's samples in its own order, every epoch's batches
    in one stream (fit reads `steps` of them per epoch); the validation batches; `steps`."""
    size = len(splits[0].x_train)
    x = tf.constant(np.stack([split.x_train for split in splits]))  # (M, size, features)
    y = tf.constant(np.stack([one_hot(split.y_train, n_classes) for split in splits]))

    members = tf.range(len(seeds), dtype=tf.int64)[None, :]

    def gather(indexes):  # (batch, M) -> (batch, M, features), (batch, M, classes)
        where = tf.stack([tf.broadcast_to(members, tf.shape(indexes)), indexes], axis=-1)
        return tf.gather_nd(x, where), tf.gather_nd(y, where)

    train = epoch_batches(seeds, size, epochs, batch_size).map(gather)
    x_val = np.stack([split.x_val for split in splits], axis=1)
    y_val = np.stack([one_hot(split.y_val, n_classes) for split in splits], axis=1)
    validation = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(batch_size).cache()
    return train, validation, -(-size // batch_size)


class PackRecorder(keras.callbacks.Callback):
    """Each member's history and telemetry rows, read from the packed logs and weights at every
    epoch end. A member whose loss, gradients or weights turn NaN or Inf is finished at that epoch
    (as a separate run stops there); training stops once every member is."""

    def __init__(self, members: int, probes: np.ndarray | None, gradients: bool, activations: bool):
        super().__init__()
        self.members = members
        self.probes = probes  # (probe samples, M, features); the hidden layers give (M, samples, units)
        self.gradients, self.activations = gradients, activations
        self.histories: list[dict[str, list[float]]] = [{} for _ in range(members)]
        self.rows: list[list[dict[str, Any]]] = [[] for _ in range(members)]
        self.finished: list[int | None] = [None] * members  # the epoch a member's values turned non-finite
        self.nonfinite: list[int | None] = [None] * members

    def on_train_begin(self, logs=None):
        self._kernels = self.model.kernels
        if self.gradients and self.model.gradient_stats is None:
            self.model.gradient_stats = VectorMean((2 * len(self._kernels) + 1) * self.members, name="gradient_stats")
        self._hidden = self._kernels[:-1]
        self._probe_model = None
        if self.activations and self.probes is not None and self._hidden:
            self._probe_model = keras.Model(self.model.inputs[0], [layer.output for layer in self._hidden])

    def on_epoch_begin(self, epoch, logs=None):
        if self.gradients:
            self.model.gradient_stats.reset_state()

    def on_epoch_end(self, epoch, logs=None):
        number = epoch + 1
        logs = {key: np.atleast_1d(np.asarray(value, dtype=float)) for key, value in (logs or {}).items()}
        count = len(self._kernels)
        if self.gradients:
            stats = np.asarray(self.model.gradient_stats.result()).reshape(2 * count + 1, self.members)
        with np.errstate(all="ignore"):  # a diverging member's weights overflow: inf, recorded as such
            weight_norms = [
                np.sqrt(np.square(layer.kernel.numpy()).reshape(self.members, -1).sum(axis=1))
                for layer in self._kernels
            ]
        outputs = None
        if self._probe_model is not None:
            outputs = self._probe_model(self.probes, training=False)
            outputs = [np.asarray(output) for output in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]
        for member in range(self.members):
            if self.finished[member] is not None:
                continue
            for key, values in logs.items():
                self.histories[member].setdefault(key, []).append(float(values[member]))
            finite = bool(np.isfinite(logs.get("loss", [0.0] * self.members)[member]))
            rows = self.rows[member]
            for depth, layer in enumerate(self._kernels, start=1):
                values = {"weight_norm": float(weight_norms[depth - 1][member])}
                if self.gradients:
                    values["gradient_norm"] = float(stats[depth - 1, member])
                    values["update_ratio"] = float(stats[count + depth - 1, member])
                telemetry_finite = all(np.isfinite(v) for v in values.values())
                if not telemetry_finite and self.nonfinite[member] is None:
                    self.nonfinite[member] = number
                finite &= telemetry_finite
                rows.extend(_rows(number, layer.name, depth, values))
            if self.gradients:
                global_norm = float(stats[-1, member])
                finite &= bool(np.isfinite(global_norm))
                if not np.isfinite(global_norm) and self.nonfinite[member] is None:
                    self.nonfinite[member] = number
                rows.extend(_rows(number, "all", 0, {"gradient_norm": global_norm}))
            if finite and outputs is not None:
                for depth, (layer, output) in enumerate(zip(self._hidden, outputs, strict=True), start=1):
                    activation = getattr(layer.activation, "__name__", None)
                    rows.extend(_rows(number, layer.name, depth, activation_stats(activation, output[member])))
            if not finite:
                self.finished[member] = number
        if all(epoch is not None for epoch in self.finished):
            self.model.stop_training = True


def _rows(epoch: int, layer: str, depth: int, values: dict[str, float]) -> list[dict[str, Any]]:
    return [{"epoch": epoch, "layer": layer, "depth": depth, "metric": k, "value": v} for k, v in values.items()]


def train_pack(
    settings: dict[str, Any],
    dataset,
    seeds: list[int],
    trial=None,
    models: list[dict[str, Any]] | None = None,
    learning_rates: list[float] | None = None,
) -> list[MemberOutcome]:
    """Train the members `seeds` of the variant `settings` (its trainer.seed aside) as one model,
    member i's initial weights drawn by `models[i]` where given (an initializer sweep's variants),
    its SGD learning rate `learning_rates[i]` where given (a rate sweep's); one outcome per member.
    A search `trial` is told the members' mean objective after each epoch and may stop them all
    (runner.pruning)."""
    trainer, options = settings["trainer"], settings.get("telemetry") or {}
    splits = member_splits(dataset, settings, seeds)
    shapes = {(split.x_train.shape, split.x_val.shape) for split in splits}
    if len(shapes) != 1 or splits[0].x_train.ndim != 2:
        raise PackingError("the members' splits differ in size or are not tables")
    n_features = splits[0].x_train.shape[1]
    optimizer = dict(settings["optimizer"])
    clipping = {key: optimizer.pop(key, None) for key in ("clipnorm", "global_clipnorm")}
    if learning_rates is not None:
        if not rate_packable(optimizer) or len(learning_rates) != len(seeds):
            raise PackingError("members' learning rates differ where the optimizer is not SGD at a constant rate")
        optimizer["learning_rate"] = 1.0
    train, validation, steps = packed_pipeline(
        splits, seeds, dataset.n_classes, trainer["batch_size"], trainer["epochs"]
    )
    traced = (n_features, dataset.n_classes, steps, learning_rates is not None)
    signature = _signature(settings, optimizer, clipping, seeds, traced)
    kept = take_kept(signature)
    if kept is None:
        keras.utils.clear_session(free_memory=False)
    tf.config.experimental.enable_op_determinism()
    model = packed_network(
        settings["model"],
        seeds,
        n_features,
        dataset.n_classes,
        models=models,
        learning_rates=learning_rates,
        **clipping,
    )
    if kept is None:
        # A whole epoch per call of the compiled step: the recorder reads logs and weights per epoch only.
        model.compile(optimizer=build_optimizer(optimizer), steps_per_execution=steps)
        model.optimizer.build(model.trainable_variables)  # a step that creates variables is traced twice
    else:  # the same network but its initial weights, learning rate or seeds: its traced steps serve
        model = adopt_state(kept, model, build_optimizer(optimizer))
    probes = None
    if options.get("activations"):
        probes = np.stack([split.x_val[: options["probe_size"]] for split in splits], axis=1)
    recorder = PackRecorder(len(seeds), probes, bool(options.get("gradients")), bool(options.get("activations")))
    pruner = None
    if trial is not None:
        from runner.pruning import PruningCallback, members_mean

        pruner = PruningCallback(trial, members_mean((settings.get("objective") or {}).get("metric", "val_accuracy")))
    started = time.perf_counter()
    model.fit(
        train,
        validation_data=validation,
        epochs=trainer["epochs"],
        steps_per_epoch=steps,
        shuffle=False,
        verbose=0,
        callbacks=[recorder, *([pruner] if pruner is not None else [])],
    )
    wall = time.perf_counter() - started
    keep(signature, model)  # once its fit went through
    scores = [None] * len(seeds)
    if trainer.get("evaluate_train"):
        scores = split_scores(model, splits, validation, dataset.n_classes, trainer["batch_size"])
    share = wall / len(seeds)
    return [
        MemberOutcome(
            history=recorder.histories[i],
            rows=recorder.rows[i],
            nonfinite_epoch=recorder.nonfinite[i],
            seconds=share,
            members=len(seeds),
            pack_seconds=wall,
            pruned_epoch=pruner.pruned_epoch if pruner is not None else None,
            scores=scores[i],
        )
        for i in range(len(seeds))
    ]


def split_scores(model: PackedModel, splits: list[Split], validation, n_classes: int, batch_size: int) -> list[dict]:
    """Each member's loss and accuracy on its own training and validation splits, with the weights
    training ended with (runner.fitting.split_scores)."""
    x = np.stack([split.x_train for split in splits], axis=1)
    y = np.stack([one_hot(split.y_train, n_classes) for split in splits], axis=1)
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
    values = {}
    for name, data in (("train", train), ("val", validation)):
        logs = model.evaluate(data, verbose=0, return_dict=True)
        values.update(
            {f"{name}_eval_{key}": np.atleast_1d(np.asarray(value, dtype=float)) for key, value in logs.items()}
        )
    return [{key: float(value[member]) for key, value in values.items()} for member in range(len(splits))]


def _signature(settings: dict[str, Any], optimizer: dict, clipping: dict, seeds: list[int], shapes: tuple) -> str:
    """What a pack's traced steps depend on: not the initial weights' draw, nor a constant learning
    rate, nor the seeds but where dropout draws masks from them."""
    model = {key: value for key, value in settings["model"].items() if key not in DRAWN}
    telemetry = settings.get("telemetry") or {}
    members = seeds if model.get("dropout_rate") else len(seeds)
    parts = ["packed", model, traced_settings(optimizer), clipping, members, shapes, bool(telemetry.get("gradients"))]
    return json.dumps(parts, sort_keys=True, default=str)


class PackingError(Exception):
    """A variant the packer cannot train as one model: it runs unpacked."""
