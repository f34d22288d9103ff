"""Operations: what an operator checks: overview and status, health, dead letters, impact,
the self test and the integration audit.
"""
