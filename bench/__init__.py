"""Benchmarks: each scenario measures Clientela beside a baseline in the same run."""
