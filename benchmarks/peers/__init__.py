"""Peers: what a user of a backend would pick instead of marconi there, measured in the same run."""
