"""Several trained genre networks as one: their log-odds averaged with weights, one sigmoid per genre.

Two backbones err on different posters (on both sources' validation split, a fine-tuned Lite0 and a Lite1 head
reach macro AP 0.313 and 0.301 alone, 0.330 blended), and one network in one file keeps prediction one object,
one LiteRT call. A member whose input is smaller than the blend's gets the poster resized inside the network
(bilinear, without antialiasing: LiteRT has no kernel for the antialiased resize).
"""
from __future__ import annotations

import keras
from keras import layers, ops

EPSILON = 1e-6


def log_odds(p):
    p = ops.clip(p, EPSILON, 1 - EPSILON)
    return ops.log(p) - ops.log1p(-p)


@keras.saving.register_keras_serializable("postergenre")
class BlendLogOdds(layers.Layer):
    """sigmoid(sum_i w_i * logit(p_i)) over the members' probabilities p_i."""

    def __init__(self, blend_weights, **kwargs):
        super().__init__(**kwargs)
        self.blend_weights = [float(w) for w in blend_weights]

    def call(self, probabilities):
        return ops.sigmoid(sum(w * log_odds(p) for w, p in zip(self.blend_weights, probabilities)))

    def get_config(self):
        return {**super().get_config(), "blend_weights": self.blend_weights}


@keras.saving.register_keras_serializable("postergenre")
class StackLogOdds(layers.Layer):
    """The members' log-odds side by side (batch x members x genres): what choosing the weights needs."""

    def call(self, probabilities):
        return ops.stack([log_odds(p) for p in probabilities], axis=1)


def member_name(index: int) -> str:
    return f"member{index}"


def _member_outputs(members: list[keras.Model], input_size: tuple[int, int]):
    image = keras.Input((*input_size, 3), name="image")
    outputs = []
    for index, member in enumerate(members):
        member.name = member_name(index)  # two members of one backbone would share a name, which Keras refuses
        size = tuple(member.input_shape[1:3])
        x = image if size == tuple(input_size) else \
            layers.Resizing(*size, interpolation="bilinear", name=f"resize_for_member{index}")(image)
        outputs.append(member(x))
    return image, outputs


def blend_network(members: list[keras.Model], weights: list[float], input_size: tuple[int, int]) -> keras.Model:
    """Images at `input_size` in, blended genre probabilities out."""
    image, outputs = _member_outputs(members, input_size)
    return keras.Model(image, BlendLogOdds(weights, name="blend")(outputs), name="ensemble_genres")


def stacked_network(members: list[keras.Model], input_size: tuple[int, int]) -> keras.Model:
    """Images in, each member's log-odds out (posters x members x genres), as the blend sees them."""
    image, outputs = _member_outputs(members, input_size)
    return keras.Model(image, StackLogOdds(name="stack")(outputs), name="ensemble_members")
