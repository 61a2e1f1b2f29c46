import numpy as np
import pytest

from radlab.tasks.mura.data import StudyPooler


@pytest.mark.parametrize(("pooling", "expected"), [("mean", [0.5, 0.9, np.nan]), ("max", [0.8, 0.9, np.nan])])
def test_pooling_over_batches_leaving_out_unreadable_images(pooling, expected):
    pooler = StudyPooler(3, pooling)
    pooler.add(np.array([0, 1]), np.array([0.2, 0.9]))
    pooler.add(np.array([0, 0, 2]), np.array([0.8, 0.99, 0.7]), readable=np.array([True, False, False]))
    np.testing.assert_allclose(pooler.probabilities(), expected)
    assert pooler.has_image.tolist() == [True, True, False]
