"""ByteBudget: a FIFO-fair semaphore counted in bytes.

The budget itself (its queue, fairness and growable leases) is in
:mod:`._byte_budget`, the leases it hands out in :mod:`._lease`, and the spare
buffers it keeps for reuse in :mod:`._spare`.
"""

from ._byte_budget import BudgetStatistics, ByteBudget
from ._lease import BudgetLease

__all__ = ["BudgetLease", "BudgetStatistics", "ByteBudget"]
