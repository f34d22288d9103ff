"""The bottom layer: settings, the sync policy (pure) and the cron expressions derived from it.

Nothing here imports from the rest of ``shared``; everything else may import from here.
"""
