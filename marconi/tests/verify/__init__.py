"""``marconi verify``: a Jepsen-style run on any driver URI, with faults, checked from its history.

- :mod:`.journal`: the history as a JSON-lines file, streamed by every worker as it works, read back as a History.
- :mod:`.runner`: producer, observer and consumer workers (processes, or threads for a driver that cannot share
  a store between processes) over queues of one URI, bounded by operations and seconds, with faults on a
  schedule, quiet points where the run pauses to read stats, and a final read of every queue.
- :mod:`.faults`: what can go wrong, one class per kind of fault, chosen by URI scheme or by a test owning a server.
- :mod:`.checker`: the history checker (``marconi.tests.history``) plus what consumers and stats add.
- :mod:`.command`: the ``marconi verify`` command line.
"""
