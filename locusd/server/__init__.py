"""The daemon's JSON-RPC server: a Unix socket serving many clients at once (one pygls protocol
per connection over a shared core), our own LSP framing in front of pygls, and the
``locusd --stdio`` forwarder.

Modules: ``paths`` (where the socket lives, who may use it), ``framing`` (Content-Length
frames), ``gates`` (the pure rules each message must pass), ``params`` (params checked against
the method's model), ``handlers`` (``@handles``: which core coroutine answers which method),
``pygls_adapter`` (every use of pygls), ``connection`` (one client: socket IO + Peer),
``server`` (the listening socket), ``client`` (connect or start the daemon; the forwarder),
``main`` (the ``locusd`` command), ``peer`` (the interfaces between the server and the core).

Nothing is imported here: ``locusd.server.peer`` and ``locusd.server.handlers`` are imported by
the core, and must not pull in pygls with them.
"""
