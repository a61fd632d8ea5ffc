"""Agents: each a small class whose `decide` returns transactions from a snapshot; the engine sends them."""
