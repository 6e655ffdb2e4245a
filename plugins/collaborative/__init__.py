"""Collaborative CRM: every channel, e-mail in and out, calls, the communication centre, teams, consent, the self-service portal."""

name = "collaborative"
version = "0.1.0"
requires: tuple[str, ...] = ()
