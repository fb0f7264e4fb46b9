"""Nova's filter scheduler as pure code: no I/O, no asyncio, no store.

The lead builds :class:`HostState` values from gossip, a
:class:`RequestSpec` from the boot request, and asks
:class:`FilterScheduler` for candidates; claiming them is the lead's job.

    model.py             HostState, RequestSpec, Flavor, ServerGroupInfo
    extra_specs.py       the flavor extra-spec operators (=, <in>, s==, <or> ...)
    filters.py           the filters by Nova's names, the FILTERS table,
                         validate_filters()
    weighers.py          RAM/Disk/CPU (and soft group) weighers, normalisation
    filter_scheduler.py  FilterScheduler: filter, weigh, pick
"""

from novad.cluster.scheduler.filter_scheduler import FilterScheduler
from novad.cluster.scheduler.filters import FILTERS, HostFilter, validate_filters
from novad.cluster.scheduler.model import (
    POLICIES,
    Flavor,
    HostState,
    Policy,
    RequestSpec,
    ServerGroupInfo,
)
from novad.cluster.scheduler.weighers import HostWeigher, WeighedHost, normalize, weigh_hosts

__all__ = [
    "FILTERS", "POLICIES", "FilterScheduler", "Flavor", "HostFilter", "HostState", "HostWeigher",
    "Policy", "RequestSpec", "ServerGroupInfo", "WeighedHost", "normalize", "validate_filters",
    "weigh_hosts",
]
