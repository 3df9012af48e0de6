"""marconi: interchangeable storage drivers for a Marconi-style message queue service."""

__version__ = "0.1.0"
