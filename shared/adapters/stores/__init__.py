"""Table storage layouts, one module per table: what a row holds and how it is written."""
