"""Outgoing notifications: the outbox table, the WeCom robot client and the dispatcher."""
