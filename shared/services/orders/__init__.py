"""Orders: intake (``POST /api/orders``), booking in the ERP, the sweeper and admin operations,
with their wire contract (``api``) and messages (``messages``).
"""
