"""Capabilities any adapter can offer, served by the core the same way for each: asynchronous
jobs (jobs), payments (payments) and signed webhooks to agencies (webhooks)."""
