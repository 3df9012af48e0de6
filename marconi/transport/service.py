"""The service's own routes: ``GET /`` (versions), ``GET``/``HEAD /v2/ping``, ``GET /v2/health``."""

from __future__ import annotations

import falcon

from marconi.storage import DriverBase, StorageError

VERSIONS = {
    "versions": [
        {
            "id": "2",
            "status": "CURRENT",
            "updated": "2014-9-24T04:06:47Z",
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.messaging-v2+json"}],
            "links": [{"href": "/v2/", "rel": "self"}],
        }
    ]
}


def reachable(driver: DriverBase, project: str) -> bool:
    """Whether the backend answers a one-row read (the contract has no ping of its own)."""
    try:
        driver.queue_controller.list(project=project, limit=1)
    except StorageError:
        return False
    return True


class Versions:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.status = falcon.HTTP_300  # as Zaqar answers it
        resp.media = VERSIONS


class Ping:
    """204 when the backend answers, 503 when it does not; ``HEAD`` answers 204 without asking it (as Zaqar)."""

    def __init__(self, driver: DriverBase) -> None:
        self.driver = driver

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.status = falcon.HTTP_204 if reachable(self.driver, req.context.project) else falcon.HTTP_503

    def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.status = falcon.HTTP_204


class Health:
    """``{"storage_reachable": bool}``; unlike Zaqar it writes nothing to measure itself and is not admin-only."""

    def __init__(self, driver: DriverBase) -> None:
        self.driver = driver

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"storage_reachable": reachable(self.driver, req.context.project)}
