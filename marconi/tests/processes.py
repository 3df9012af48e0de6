"""Where the multi-process runs of the suite and of ``marconi verify`` start their workers.

Workers come from a fork server (``forkserver``): a clean, single-threaded process that imported the modules
workers need once, so that starting one (and starting one again after a fault killed it) costs a fork, not a new
interpreter importing a driver. Nothing else is inherited from the process that asks: a worker gets its
arguments pickled and loads its own driver. Where there is no fork server (Windows), workers are spawned.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from multiprocessing.context import ForkServerContext, SpawnContext

from marconi.storage.loading import driver_class, scheme_of

#: Imported in the fork server for every worker: the runs' own modules.
ALWAYS = ("marconi.storage", "marconi.tests.workloads", "marconi.tests.verify.runner")


def worker_context(uri: str) -> ForkServerContext | SpawnContext:
    """The context to start workers on ``uri`` with; its fork server also imports the URI's driver module.

    A process has one fork server: the modules of the first call that starts it are the ones imported there
    (a later driver's workers import theirs themselves, as spawned ones would).
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    modules = list(ALWAYS)
    with contextlib.suppress(Exception):  # a URI no driver serves: the run reports it when it loads the driver
        modules.append(driver_class(scheme_of(uri)).__module__)
    forkserver = multiprocessing.get_context("forkserver")
    forkserver.set_forkserver_preload(modules)
    return forkserver
