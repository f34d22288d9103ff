"""Product content pushed from Business Central to storefront channels (pure rules, no I/O)."""
