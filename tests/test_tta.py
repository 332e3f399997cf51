import numpy as np

from digitrec import tta


def _bar() -> np.ndarray:
    image = np.zeros((28, 28), np.uint8)
    image[4:24, 13:15] = 255  # an upright stroke through the centre
    return image


def test_the_first_form_is_the_image_itself_and_the_rest_are_mild():
    images = np.stack([_bar(), _bar()[::-1, ::-1]])
    forms = tta.forms(images)
    assert forms.shape == (len(tta.FORMS), 2, 28, 28) and forms.dtype == np.uint8
    np.testing.assert_array_equal(forms[0], images)
    for form in forms[1:]:
        assert not np.array_equal(form, images)
        # Ink stays about the same amount and on the page.
        assert 0.6 < form.astype(float).sum() / images.astype(float).sum() < 1.5


def test_rotation_turns_about_the_centre_the_way_it_says():
    turned = tta.transform(_bar()[None], 8.0, 1.0)[0]
    rows, cols = np.nonzero(turned > 127)
    assert abs(rows.mean() - 13.5) < 1 and abs(cols.mean() - 13.5) < 1
    # Clockwise on screen: the top of the stroke moves right.
    top, bottom = cols[rows < 10].mean(), cols[rows > 17].mean()
    assert top > bottom + 1


def test_scale_keeps_the_centre_and_changes_the_height():
    bigger = tta.transform(_bar()[None], 0.0, 1.1)[0]
    smaller = tta.transform(_bar()[None], 0.0, 0.9)[0]
    height = lambda image: np.ptp(np.nonzero(image > 127)[0])  # noqa: E731
    assert height(smaller) < height(_bar()) < height(bigger)


def test_averaged_means_the_outputs_of_every_form_and_is_deterministic():
    images = np.stack([_bar()] * 3)
    seen = []

    def predict(batch):
        seen.append(len(batch))
        return np.stack([batch.reshape(len(batch), -1).mean(axis=1), np.ones(len(batch))], 1)

    out = tta.averaged(predict, images)
    assert seen == [len(tta.FORMS) * 3] and out.shape == (3, 2)
    expected = tta.forms(images).reshape(len(tta.FORMS), 3, -1).mean(axis=2).mean(axis=0)
    np.testing.assert_allclose(out[:, 0], expected)
    np.testing.assert_array_equal(out, tta.averaged(predict, images))
