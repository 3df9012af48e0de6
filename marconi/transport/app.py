"""The WSGI application: Zaqar v2's routes over one storage driver.

``make_app(driver)`` is all a server needs; ``marconi serve`` runs it with waitress. Every ``/v2`` request names
its project in ``X-Project-ID`` and its client in ``Client-ID`` (a UUID), as Zaqar requires; both are trusted
as given, so authentication belongs in front of this application.
"""

from __future__ import annotations

from typing import Any

import falcon

from marconi.storage import DriverBase, StorageError, validation
from marconi.storage.errors import InvalidInput
from marconi.transport import claims, errors, formats, messages, queues, service


class Identity:
    """Reads ``X-Project-ID`` and ``Client-ID`` into ``req.context`` and refuses requests Zaqar refuses.

    Under ``/v2`` both headers are required (400 when missing or malformed); a client that does not accept
    JSON gets 406, and a form-encoded body 400.
    """

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not (req.path == formats.PREFIX or req.path.startswith(formats.PREFIX + "/")):
            return
        if not req.client_accepts_json:
            raise falcon.HTTPNotAcceptable(description="This service only serves application/json.")
        if req.content_type and req.content_type.split(";", 1)[0].strip().lower() == falcon.MEDIA_URLENCODED:
            raise falcon.HTTPBadRequest(
                title="Invalid Content-Type", description="Request bodies are JSON, not form-encoded."
            )
        project = req.get_header("X-Project-ID", required=True)
        client = req.get_header("Client-ID", required=True)
        try:
            req.context.project = validation.project(project)
        except InvalidInput as error:
            raise InvalidInput("X-Project-ID", error.problem) from None
        req.context.client_id = validation.client_uuid(client, "Client-ID")


def make_app(driver: DriverBase) -> falcon.App[falcon.Request, falcon.Response]:
    """The Zaqar v2 application serving ``driver`` (which the caller opens and closes)."""
    app = falcon.App(middleware=[Identity()])
    app.req_options.keep_blank_qs_values = False  # "?marker=" means no marker, as in Zaqar
    app.resp_options.default_media_type = falcon.MEDIA_JSON
    app.add_error_handler(Exception, errors.on_unexpected)
    app.add_error_handler(StorageError, errors.on_storage_error)
    app.set_error_serializer(errors.serialize)
    routes: list[tuple[str, Any]] = [
        ("/", service.Versions()),
        ("/ping", service.Ping(driver)),
        ("/health", service.Health(driver)),
        ("/queues", queues.Collection(driver)),
        ("/queues/{name}", queues.Item(driver)),
        ("/queues/{name}/stats", queues.Stats(driver)),
        ("/queues/{name}/messages", messages.Collection(driver)),
        ("/queues/{name}/messages/{message_id}", messages.Item(driver)),
        ("/queues/{name}/claims", claims.Collection(driver)),
        ("/queues/{name}/claims/{claim_id}", claims.Item(driver)),
    ]
    for path, resource in routes:
        app.add_route(path if path == "/" else formats.PREFIX + path, resource)
    return app
