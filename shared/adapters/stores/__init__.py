"""Table-storage layouts: one module per table (or family of rows), each owning its keys and
columns. Services use these; nothing here knows about HTTP or messages.
"""
