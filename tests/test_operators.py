import eosfast
import numpy as np
import pytest
from conftest import random_symmetric
from scipy.sparse.linalg import LinearOperator, aslinearoperator


def test_dense_operator(rng):
    A = random_symmetric(rng, 20)
    op = eosfast.as_operator(A)
    v = rng.standard_normal(20)
    np.testing.assert_allclose(op @ v, A @ v, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(op.to_dense(), A, rtol=1e-14, atol=1e-15)
    assert eosfast.as_operator(op) is op


def test_scipy_operator(rng):
    A = random_symmetric(rng, 15)
    op = eosfast.as_operator(aslinearoperator(A))
    V = rng.standard_normal((15, 4))
    np.testing.assert_allclose(op.matvec(V), A @ V, rtol=1e-13, atol=1e-14)
    with pytest.raises(ValueError, match="square"):
        eosfast.as_operator(LinearOperator((3, 4), matvec=lambda v: v[:3], dtype=float))


def test_callable_operator(rng):
    A = random_symmetric(rng, 10)
    op = eosfast.as_operator(lambda v: A @ v, dim=10)
    v = rng.standard_normal(10)
    np.testing.assert_allclose(op @ v, A @ v, rtol=1e-14)
    with pytest.raises(ValueError, match="dim="):
        eosfast.as_operator(lambda v: v)
    bad = eosfast.as_operator(lambda v: np.ones(3), dim=10)
    with pytest.raises(ValueError, match=r"matvec returned an array of shape \(3,\)"):
        bad @ v


@pytest.mark.parametrize(
    "op, error",
    [
        (np.array([[1.0, 2.0], [3.0, 4.0]]), ValueError),
        (np.ones(3), ValueError),
        (np.full((2, 2), np.nan), ValueError),
        ("matrix", TypeError),
    ],
)
def test_bad_operators(op, error):
    with pytest.raises(error):
        eosfast.as_operator(op)


def test_operator_shape_errors(rng):
    op = eosfast.as_operator(np.eye(4))
    with pytest.raises(ValueError, match="shape"):
        op @ np.ones(5)
    with pytest.raises(ValueError, match="NaN"):
        op @ np.array([1, np.nan, 0, 0])
