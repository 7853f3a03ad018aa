"""The config's lists of choices agree with the registries that implement them.

`config` stays TensorFlow-free, so it keeps its own lists of names; these tests
make a new loss or architecture fail loudly until both places name it.
"""

from facegan.config import ARCHITECTURES, LOSSES


def test_config_losses_are_the_registered_ones():
    from facegan.losses import LOSSES as REGISTERED

    assert LOSSES == tuple(REGISTERED)


def test_config_architectures_are_the_registered_ones():
    from facegan.models import _BUILDERS

    assert ARCHITECTURES == tuple(_BUILDERS)
