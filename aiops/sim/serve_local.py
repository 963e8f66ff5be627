"""The simulated cluster's Kubernetes API, served in-process for as long as a `with` block needs it.

What `aiops sim serve` does in its own process, for one step of the demo (the act step: the actuator needs an API
to dry-run and apply against): the cluster of `settings.sim` simulated from its start through the simulated days,
so its state continues the data that was ingested, served on a free loopback port, with a kubeconfig under
`settings.state_dir`. Inside the block, settings point at it; after it, the server is stopped and its kubeconfig
removed (it would point at nothing).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from aiops.errors import AiopsError
from aiops.settings import Settings


@contextmanager
def local_api(settings: Settings, *, speed: float = 0.0) -> Iterator[Settings]:
    """Yield settings whose kubeconfig points at an in-process simulated API, when there is nothing to point at.

    Only for `source == "simulator"` with no `kubeconfig` configured; otherwise the settings are yielded as they
    are (a real cluster, or one the user serves). `speed` 0 freezes the simulated clock at the end of the
    simulated span (what the stored data ends with); 1 lets it run on in real time from there.
    """
    if settings.source != "simulator" or settings.kubeconfig is not None:
        yield settings
        return
    if speed < 0:
        raise AiopsError(f"local_api: speed must be >= 0 (0 freezes the clock), received {speed}")
    from aiops.sim.apiserver import ApiServer
    from aiops.sim.generate import build_cluster
    from aiops.sim.kubeconfig import write_kubeconfig
    from aiops.sim.live import LiveCluster

    sim = settings.sim
    spec = build_cluster(sim, cluster_name=settings.cluster_name)
    live = LiveCluster(spec, start=sim.resolved_start(), step_s=sim.step_seconds, seed=sim.seed, speed=speed,
                       history=timedelta(days=sim.days))
    server = ApiServer(live, cluster=spec.name).start()
    # its own file: `aiops sim serve` may be using <state_dir>/kubeconfig for a server of its own
    path = settings.state_dir / f"kubeconfig-local-{os.getpid()}"
    try:
        kubeconfig = write_kubeconfig(path, server.url, cluster=spec.name)
        yield settings.model_copy(update={"kubeconfig": kubeconfig, "kube_context": None})
    finally:
        server.stop()
        path.unlink(missing_ok=True)
