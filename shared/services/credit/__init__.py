"""Credit: the live credit check and the customer credit figures behind it."""
