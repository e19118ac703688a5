"""Polynomial learning-rate decay with a linear warm-up, as PaddleSeg trains SegFormer.

The GDCLD models were trained with PaddleSeg (Fang et al., section 4.3), whose
SegFormer recipe ramps the learning rate up linearly for a short warm-up and
then decays it polynomially (power 1: linearly) to an end value over the rest
of training. Being a `keras.optimizers.schedules.LearningRateSchedule` driven by
the optimizer's iteration count, the schedule is restored exactly when training
resumes from a checkpoint that holds the optimizer state.
"""

import keras
from keras import ops

from gdcld_zoo.errors import InvalidInputError


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class PolynomialDecayWithWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `initial_learning_rate`, then polynomial decay.

    For step `s` (0-based optimizer iterations):

    - `s < warmup_steps`: `initial_learning_rate * (s + 1) / warmup_steps`
      (the first step already moves the weights);
    - otherwise: `(initial - end) * (1 - t) ** power + end` with
      `t = (s - warmup_steps) / (decay_steps - warmup_steps)` clipped to [0, 1].

    Args:
        initial_learning_rate: Peak learning rate reached after the warm-up.
        decay_steps: Total training steps; the rate is `end_learning_rate` from then on.
        warmup_steps: Steps of linear warm-up (0 for none); at most `decay_steps`.
        end_learning_rate: Final learning rate.
        power: Polynomial power (1.0: linear decay, PaddleSeg's default).

    Example:
    >>> schedule = PolynomialDecayWithWarmup(1e-3, decay_steps=10, warmup_steps=2)
    >>> [round(float(schedule(s)), 6) for s in (0, 1, 6, 10)]
    [0.0005, 0.001, 0.0005, 0.0]
    """

    def __init__(self, initial_learning_rate, decay_steps, warmup_steps=0, end_learning_rate=0.0, power=1.0):
        if decay_steps < 1:
            raise InvalidInputError(f"decay_steps must be at least 1, got {decay_steps}.")
        if not 0 <= warmup_steps <= decay_steps:
            raise InvalidInputError(
                f"warmup_steps must be between 0 and decay_steps ({decay_steps}), got {warmup_steps}."
            )
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = int(decay_steps)
        self.warmup_steps = int(warmup_steps)
        self.end_learning_rate = float(end_learning_rate)
        self.power = float(power)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak = self.initial_learning_rate
        warmup = ops.cast(max(self.warmup_steps, 1), "float32")
        warm = peak * (step + 1.0) / warmup
        decay_span = ops.cast(max(self.decay_steps - self.warmup_steps, 1), "float32")
        progress = ops.clip((step - self.warmup_steps) / decay_span, 0.0, 1.0)
        decayed = (peak - self.end_learning_rate) * ops.power(1.0 - progress, self.power) + self.end_learning_rate
        return ops.where(step < self.warmup_steps, warm, decayed)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "warmup_steps": self.warmup_steps,
            "end_learning_rate": self.end_learning_rate,
            "power": self.power,
        }
