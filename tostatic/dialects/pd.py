"""The `pd` dialect: high-level SSA tensor ops, one class an op (defined in `tostatic.ops`)."""
from __future__ import annotations

from xdsl.ir import Dialect

import tostatic.ops  # noqa: F401  (registers every primitive)
from tostatic.ir.attributes import ATTRIBUTES
from tostatic.ir.opdef import REGISTRY

Pd = Dialect("pd", list(REGISTRY.values()), ATTRIBUTES)
