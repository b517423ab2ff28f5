"""Faces in figures: synthetic ones shown, licensed ones only for listed subjects."""

import numpy as np
import pytest

from forgetting_aus import publication


def _faces(n=3, size=48):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (n, size, size, 3)).astype(np.uint8)
    # A plausible outline: points on an ellipse inside the crop.
    angle = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    points = np.stack([size / 2 + size / 3 * np.cos(angle), size / 2 + size / 2.5 * np.sin(angle)], axis=1)
    return images, np.repeat(points[None], n, axis=0).astype(np.float32)


def test_synthetic_faces_are_always_shown_untouched():
    images, landmarks = _faces()
    shown = publication.displayable_faces(images, landmarks, np.array(["a", "", "b"]), data_source="twins",
                                          publishable="")
    np.testing.assert_array_equal(shown, images)


def test_real_faces_of_unlisted_subjects_become_their_outline():
    images, landmarks = _faces()
    subjects = np.array(["042-ll042", "", "064-ak064"])
    shown = publication.displayable_faces(images, landmarks, subjects, data_source="real",
                                          publishable=" 064-ak064 , 999 ")
    np.testing.assert_array_equal(shown[2], images[2])
    for i in (0, 1):  # an unknown subject (AffectNet) is never publishable
        outline = publication.outline_image(landmarks[i], size=48)
        np.testing.assert_array_equal(shown[i], outline)
        assert set(np.unique(outline)) >= {publication.BACKGROUND} and outline.min() < publication.BACKGROUND
        # Nothing of the face's pixels survives.
        assert not np.array_equal(shown[i], images[i])
    assert publication.publishable_set(" a, ,b ") == {"a", "b"}


def test_outline_rejects_landmarks_that_are_not_68_points():
    with pytest.raises(ValueError, match=r"shape \(68, 2\)"):
        publication.outline_image(np.zeros((66, 2)), size=32)
