"""Pricing: the in-memory price book, the price publisher and quotes, with their wire contract."""
