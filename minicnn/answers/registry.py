"""Every op an answer key can name, by name."""
from __future__ import annotations

from .formula import FORMULA
from .ops import BASIC
from .tables import CONV_LAYER, NETWORK

OPS = {op.name: op for op in BASIC[:8] + [CONV_LAYER, NETWORK, FORMULA] + BASIC[8:]}
