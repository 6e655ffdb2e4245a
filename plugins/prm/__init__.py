"""Partner relationship management: partners of a network, deal registration, contracts, commissions, scorecards."""

name = "prm"
version = "0.1.0"
requires: tuple[str, ...] = ("operational",)
