"""Tiny networks for the tests of code that runs several models at once.

:func:`freeze_family` builds what the pain transfer makes of an emotion model: FreezeB<k>
keeps the emotion model's first k conv blocks bit for bit and has its later blocks (and
its head) changed, as training would change them.
"""

from __future__ import annotations

from forgetting_aus import models, shared_blocks


def freeze_family(levels=range(6), *, num_classes: int = 2, size: int = 32) -> dict[int, object]:
    """FreezeB<k> for each k of ``levels``: a 1/16-width VGG16 of ``size`` px whose blocks after
    k are shifted (by an amount that differs per block and per k) and whose head is new."""
    emotion = models.build_vgg16(8, input_size=size, width=0.0625, head_units=16, seed=0)
    family = {}
    for k in levels:
        model = models.with_new_head(emotion, num_classes, head_units=16, seed=10 + k)
        for block, segment in enumerate(shared_blocks.conv_segments(model)[k:], start=k + 1):
            for layer in segment:
                layer.set_weights([w + 0.01 * (block + k) for w in layer.get_weights()])
        family[k] = model
    return family
