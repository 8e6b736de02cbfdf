"""paddle.autograd: backward over several tensors at once, grad, and the grad-mode switches."""
from tostatic.frontend.tensor.autograd import backward_many as backward
from tostatic.frontend.tensor.autograd import grad
from tostatic.frontend.tensor.grad_mode import (
    enable_grad,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)

__all__ = ["backward", "enable_grad", "grad", "is_grad_enabled", "no_grad", "set_grad_enabled"]
