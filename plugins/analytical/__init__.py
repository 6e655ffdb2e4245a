"""Analytical CRM: the customer data warehouse, profiling, RFM, lifetime value, churn, cross/up-sell, cohorts, segments."""

name = "analytical"
version = "0.1.0"
requires: tuple[str, ...] = ()
