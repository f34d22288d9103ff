"""Inventory: the stock projection fed by events and webhooks, availability, alerts and
reconciliation with the ERP.
"""
