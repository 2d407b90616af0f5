import eosfast
import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def restore_threads():
    """Restore the library-wide thread count after a test changes it."""
    before = eosfast.get_num_threads()
    yield
    eosfast.set_num_threads(before)


def random_symmetric(rng, n, spectrum=None):
    """A random symmetric matrix, optionally with a prescribed spectrum."""
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    if spectrum is None:
        spectrum = rng.standard_normal(n)
    return (Q * np.asarray(spectrum)) @ Q.T
