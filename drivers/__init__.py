"""marconi's own storage drivers, installed as ``marconi_drivers``; each is found only through entry points."""
