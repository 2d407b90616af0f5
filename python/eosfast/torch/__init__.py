"""PyTorch models as eosfast problems (the optional ``torch`` extra).

``eosfast.torch.problem(model, loss_fn, data)`` turns a model and a data set
into an eosfast problem over the flat vector of its parameters, so eosfast's
eigensolvers, trajectory runner and flows work on any ``nn.Module``.
:func:`load_vector` and :func:`vector_from_model` move vectors (iterates,
eigenvectors) between eosfast and the model. Importing ``eosfast`` does not
import torch; importing ``eosfast.torch`` does.
"""

try:
    import torch  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised without torch only
    raise ImportError("eosfast.torch needs PyTorch: pip install 'eosfast[torch]'") from err

from ._hazards import TorchHazardWarning
from ._params import load_vector, vector_from_model
from ._problem import TorchProblem, problem

__all__ = ["TorchHazardWarning", "TorchProblem", "load_vector", "problem", "vector_from_model"]
