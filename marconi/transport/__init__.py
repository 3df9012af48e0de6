"""The HTTP transport: the core of OpenStack Zaqar's v2 API, served over any marconi storage driver.

``marconi serve URI`` loads the driver through ``marconi.storage.load(URI)`` and serves it with waitress on
127.0.0.1:8888 (see ``marconi.transport.command``); ``marconi.transport.app.make_app(driver)`` builds the WSGI
application for embedding. What is served, and how Zaqar's lazy queues map onto the storage contract, is in
``docs/http.md``.

Importing this package needs nothing beyond marconi; the application itself needs the ``http`` extra
(``pip install 'marconi[http]'``: Falcon and waitress).
"""
