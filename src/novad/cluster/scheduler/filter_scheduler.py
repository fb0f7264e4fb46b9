"""Nova's filter scheduler: drop the hosts a request may not use, run the
enabled filters in order, weigh the survivors, pick among the best.

The scheduler only ranks; it reserves nothing.  The lead claims the first
candidate and, when the claim fails, moves on to the next (Nova's alternate
hosts), which is why :meth:`FilterScheduler.select_destinations` returns up
to ``[scheduler] max_attempts`` hosts rather than one.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence

from novad.cluster.scheduler.filters import HostFilter, build_filters
from novad.cluster.scheduler.model import HostState, RequestSpec
from novad.cluster.scheduler.weighers import HostWeigher, build_weighers, weigh_hosts
from novad.config import Config
from novad.errors import NoValidHost


class FilterScheduler:
    """Ranks hosts for a request with the configured filters and weighers.

    ``rng`` decides among the ``host_subset_size`` best hosts; pass a seeded
    one for repeatable choices.  Construction raises ``ConfigError`` when
    ``enabled_filters`` names an unknown filter."""

    def __init__(self, config: Config, rng: random.Random | None = None) -> None:
        self.filters: list[HostFilter] = build_filters(config)
        self.weighers: list[HostWeigher] = build_weighers(config)
        self.subset_size = config.filter_scheduler.host_subset_size
        self.max_attempts = config.scheduler.max_attempts
        self.rng = rng if rng is not None else random.Random()

    def filter_hosts(self, hosts: Sequence[HostState], spec: RequestSpec) -> list[HostState]:
        """The hosts ``spec`` may go to, in input order.

        ``ignore_hosts`` go first; ``force_hosts`` then keep only the named
        hosts and skip the filters, as an admin's ``--host`` does in Nova
        (names compare without case).  Raises :class:`NoValidHost` when
        nothing is left, naming the filter that removed the last hosts."""
        ignored = {name.lower() for name in spec.ignore_hosts}
        candidates = [h for h in hosts if h.name.lower() not in ignored]
        if not hosts:
            raise NoValidHost(detail="There are no compute hosts to choose from")
        if not candidates:
            raise NoValidHost(detail="Every compute host is in the request's ignore_hosts")
        if spec.force_hosts:
            forced = {name.lower() for name in spec.force_hosts}
            candidates = [h for h in candidates if h.name.lower() in forced]
            if not candidates:
                raise NoValidHost(detail="No host matched force_hosts "
                                  f"'{', '.join(spec.force_hosts)}'")
            return candidates
        if spec.requested_host:
            candidates = [h for h in candidates
                          if h.name.lower() == spec.requested_host.lower()]
            if not candidates:
                raise NoValidHost(detail=f"Requested host {spec.requested_host} is not "
                                  "a candidate")
        for host_filter in self.filters:
            candidates = [h for h in candidates if host_filter.host_passes(h, spec)]
            if not candidates:
                raise NoValidHost(filter_name=host_filter.name)
        return candidates

    def select_destinations(self, hosts: Sequence[HostState],
                            spec: RequestSpec) -> list[HostState]:
        """Candidates for one instance of ``spec``, best first: at most
        ``max_attempts`` of them, the first drawn at random among the
        ``host_subset_size`` heaviest.  Pure: nothing is consumed.  Raises
        :class:`NoValidHost` as :meth:`filter_hosts` does."""
        passed = self.filter_hosts(hosts, spec)
        ordered = [wh.host for wh in weigh_hosts(self.weighers, passed, spec)]
        first = self.rng.randrange(min(self.subset_size, len(ordered)))
        ordered.insert(0, ordered.pop(first))
        return ordered[:self.max_attempts]

    def select_many(self, hosts: Sequence[HostState],
                    spec: RequestSpec) -> list[list[HostState]]:
        """Candidates for each of ``spec.num_instances`` instances.

        As Nova, each pick consumes its first candidate's resources and
        joins the server group before the next pick is made, so a
        multi-create neither overcommits a host nor breaks its group's
        policy.  All or nothing: :class:`NoValidHost` when any pick finds
        no host."""
        current = list(hosts)
        group = spec.group
        picks: list[list[HostState]] = []
        for index in range(spec.num_instances):
            uuid = spec.uuid_of_pick(index)
            pick_spec = dataclasses.replace(spec, instance_uuid=uuid, group=group)
            try:
                candidates = self.select_destinations(current, pick_spec)
            except NoValidHost as exc:
                raise NoValidHost(filter_name=exc.filter_name, detail=(
                    f"{exc.detail}, placing instance {index + 1} of {spec.num_instances}"
                )) from None
            chosen = candidates[0]
            current = [h.consume(pick_spec) if h.name == chosen.name else h for h in current]
            if group is not None:
                group = dataclasses.replace(group, hosts=group.hosts | {chosen.name},
                                            members=group.members | {uuid})
            picks.append(candidates)
        return picks
