"""Which jobs of a sweep train together as one packed model (runner.packing): those whose configs
differ only in trainer.seed and that the packer trains exactly as separate runs. No TensorFlow."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf

from runner.config import BUILT_IN_MODEL

log = logging.getLogger(__name__)

# Optimizers whose update of each weight depends on that weight's gradient alone.
ELEMENTWISE = {
    f"keras.optimizers.{name}"
    for name in ("SGD", "RMSprop", "Adam", "AdamW", "Adagrad", "Adadelta", "Adamax", "Nadam", "Ftrl", "Lion")
}


def unpackable(task: dict[str, Any]) -> str | None:
    """Why this variant's seeds cannot train as one packed model, or None where they can."""
    model, optimizer, trainer = task["model"], task["optimizer"], task["trainer"]
    if model.get("_target_") != BUILT_IN_MODEL:
        return "a custom model"
    if optimizer.get("_target_") not in ELEMENTWISE:
        return f"the optimizer {optimizer.get('_target_')} (not known to update each weight on its own)"
    if task.get("callbacks"):
        return "callbacks (they would stop or change every seed at once)"
    if (task.get("logger") or {}).get("name", "none") != "none":
        return "an experiment tracker (its callbacks log one run)"
    if trainer.get("loss") != "categorical_crossentropy" or list(trainer.get("metrics") or []) != ["accuracy"]:
        return "a loss or metrics other than the defaults"
    if trainer.get("class_weight") is not None or trainer.get("save_model") or trainer.get("verbose"):
        return "class weights, save_model or a verbose fit"
    return None


# The model's settings that only draw its initial weights: variants that differ in these alone
# (an initializer sweep) train as members of one pack.
DRAWN = ("weights_initializer", "weights_scale", "bias_initializer")


def drawn_settings(config: DictConfig | dict) -> dict[str, Any]:
    """A job's initial-weight settings, resolved."""
    model = config["model"]
    return {key: model.get(key) for key in DRAWN}


# SGD's settings under which a member's update is its gradient times its own learning rate, exactly:
# none that reads the rate or the raw gradient inside the optimizer.
_SCALED_RATE_OFF = ("weight_decay", "clipvalue", "loss_scale_factor", "gradient_accumulation_steps")


def rate_packable(optimizer: DictConfig | dict) -> bool:
    """Whether variants that differ only in this optimizer's learning rate can share a pack: SGD
    (with or without momentum) at a constant rate, each member's gradient scaled by its own."""
    rate = optimizer.get("learning_rate")
    return (
        optimizer.get("_target_") == "keras.optimizers.SGD"
        and isinstance(rate, (int, float))
        and not isinstance(rate, bool)
        and not any(optimizer.get(key) for key in _SCALED_RATE_OFF)
    )


def pack_key(config: DictConfig) -> str | None:
    """variant_key without the initial weights' settings (and SGD's constant learning rate): jobs
    with equal keys can share a pack."""
    task = OmegaConf.to_container(config, resolve=False)
    task.pop("hydra", None)
    task["trainer"].pop("seed", None)
    for key in DRAWN:
        task["model"].pop(key, None)
    reads = ["trainer.seed", *(f"model.{name}" for name in DRAWN)]
    if rate_packable(task["optimizer"]):
        task["optimizer"].pop("learning_rate")
        reads.append("optimizer.learning_rate")
    task.pop("label", None)  # names a variant, e.g. Init-${model.weights_initializer}
    key = json.dumps(task, sort_keys=True, default=str)
    return None if any(name in key for name in reads) else key


def variant_key(config: DictConfig) -> str | None:
    """The job's config without Hydra's node and trainer.seed: jobs with equal keys are seeds of one
    variant. None where another setting reads the seed (`data.seed: ${trainer.seed}`): its seeds
    are then different variants."""
    task = OmegaConf.to_container(config, resolve=False)
    task.pop("hydra", None)
    task["trainer"].pop("seed", None)
    key = json.dumps(task, sort_keys=True, default=str)
    return None if "trainer.seed" in key else key


def member_key(config: DictConfig | dict) -> str:
    """What tells a pack's members apart: their initial weights' settings, learning rate and seed."""
    rate = config["optimizer"].get("learning_rate")
    return json.dumps([drawn_settings(config), rate, config["trainer"]["seed"]], sort_keys=True, default=str)


def plan_packs(
    configs: Sequence[DictConfig | None], workers: int, size: int, across_variants: bool = True
) -> list[list[int]]:
    """The jobs (indexes into `configs`) to run together: packs of at most `size` seeds of one
    variant (of variants that differ only in their initial weights' settings or SGD's learning
    rate, `across_variants`),
    split further so that every worker has one where there are fewer packs than workers; every
    other job alone. A None config (not composed here) runs alone."""
    groups: dict[str, list[int]] = {}
    alone: list[list[int]] = []
    reasons: dict[str, int] = {}
    for index, config in enumerate(configs):
        key = None
        if config is not None:
            key = (pack_key(config) if across_variants else None) or variant_key(config)
        if key is None:
            alone.append([index])
            continue
        groups.setdefault(key, []).append(index)
    packs: list[list[int]] = []
    for members in groups.values():
        seeds = [member_key(configs[index]) for index in members]
        reason = None if len(members) > 1 else "one seed"
        if reason is None:
            task = OmegaConf.to_container(configs[members[0]], resolve=False)
            reason = unpackable(task) or (None if len(set(seeds)) == len(seeds) else "repeated seeds")
            if reason is not None:
                reasons[reason] = reasons.get(reason, 0) + 1
        if reason is not None:
            alone.extend([index] for index in members)
        else:
            packs.append(members)
    parts = max(1, -(-workers // max(len(packs), 1))) if packs else 1
    split = []
    for members in packs:
        chunk = max(1, min(size, -(-len(members) // parts)))
        split.extend(members[start : start + chunk] for start in range(0, len(members), chunk))
    for reason, count in reasons.items():
        log.info("%d variant(s) run each seed on its own: %s (hydra.launcher.pack_seeds)", count, reason)
    return (
        [pack for pack in split if len(pack) > 1]
        + [[index] for pack in split if len(pack) == 1 for index in pack]
        + alone
    )
